using System;
using System.Buffers.Binary;
using System.IO;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using Kiln.Runtime;

namespace Kiln;

/// <summary>A sequence of token ids read by position: an array, or a token file mapped into memory.</summary>
public interface ITokenSource
{
    /// <summary>The number of tokens.</summary>
    long Length { get; }

    /// <summary>Copies the tokens from <paramref name="start"/> into <paramref name="destination"/> (its whole length).</summary>
    void CopyTo(long start, Span<int> destination);
}

/// <summary>Tokens held in memory.</summary>
public sealed class TokenArray(ReadOnlyMemory<int> tokens) : ITokenSource
{
    /// <inheritdoc/>
    public long Length => tokens.Length;

    /// <inheritdoc/>
    public void CopyTo(long start, Span<int> destination) => tokens.Span.Slice(checked((int)start), destination.Length).CopyTo(destination);
}

/// <summary>How token ids are stored in a token file.</summary>
public enum TokenWidth
{
    /// <summary>uint16 tokens (llm.c's GPT-2 layout: magic 20240520, version 1): vocabularies up to 65,536.</summary>
    UInt16,
    /// <summary>uint32 tokens (llm.c's Llama-3 layout: magic 20240801, version 7): larger vocabularies.</summary>
    UInt32,
}

/// <summary>What is wrong with a token file (see <see cref="TokenFileFormatException"/>).</summary>
public enum TokenFileError
{
    /// <summary>Shorter than the 1,024-byte header.</summary>
    HeaderTooSmall,
    /// <summary>The magic number is not a token file's.</summary>
    BadMagic,
    /// <summary>A version this reader does not know for the magic.</summary>
    UnsupportedVersion,
    /// <summary>A negative token count.</summary>
    InvalidCount,
    /// <summary>Fewer token bytes than the header's count.</summary>
    Truncated,
    /// <summary>More bytes than the header's count.</summary>
    TrailingBytes,
}

/// <summary>A token file that breaks the format: which rule (<see cref="Error"/>) and where.</summary>
public sealed class TokenFileFormatException : InvalidFileFormatException
{
    /// <summary>Creates the exception.</summary>
    public TokenFileFormatException(TokenFileError error, long offset, string detail, string? file)
        : base(error switch
        {
            TokenFileError.HeaderTooSmall => "too short for a token file header",
            TokenFileError.BadMagic => "not a token file (bad magic number)",
            TokenFileError.UnsupportedVersion => "unsupported token file version",
            TokenFileError.InvalidCount => "invalid token count",
            TokenFileError.Truncated => "the file is truncated",
            TokenFileError.TrailingBytes => "bytes after the last token",
            _ => error.ToString(),
        }, offset, detail, file) => Error = error;

    /// <summary>The rule that was broken.</summary>
    public TokenFileError Error { get; }
}

/// <summary>
/// A token file in llm.c's (and nanoGPT's) layout, mapped into memory: a header of 256 little-endian int32 — magic,
/// version, token count — then the tokens, uint16 (magic 20240520, version 1) or uint32 (magic 20240801, version 7).
/// Opening checks the header and that the file holds exactly the tokens it announces; nothing is read until asked for.
/// </summary>
public sealed class TokenFile : ITokenSource, IDisposable
{
    /// <summary>Bytes before the first token.</summary>
    public const int HeaderBytes = 256 * 4;

    /// <summary>The magic number of uint16 token files.</summary>
    public const int Magic16 = 20240520;

    /// <summary>The magic number of uint32 token files.</summary>
    public const int Magic32 = 20240801;

    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;

    private TokenFile(string path, TokenWidth width, long count, MemoryMappedFile? map, MemoryMappedViewAccessor? view)
    {
        Path = path;
        Width = width;
        Length = count;
        _map = map;
        _view = view;
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>How the tokens are stored.</summary>
    public TokenWidth Width { get; }

    /// <inheritdoc/>
    public long Length { get; }

    /// <summary>Opens and validates <paramref name="path"/>.</summary>
    /// <exception cref="TokenFileFormatException">The file breaks the format (the message names the rule and the byte offset).</exception>
    public static TokenFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        SafeTensors.RequireLittleEndian();
        long length = new FileInfo(path).Length;
        if (length < HeaderBytes)
            throw new TokenFileFormatException(TokenFileError.HeaderTooSmall, length, $"the file has {length} bytes; a token file starts with a {HeaderBytes}-byte header", path);
        Span<byte> header = stackalloc byte[12];
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read)) stream.ReadExactly(header);
        int magic = BinaryPrimitives.ReadInt32LittleEndian(header), version = BinaryPrimitives.ReadInt32LittleEndian(header[4..]);
        int count = BinaryPrimitives.ReadInt32LittleEndian(header[8..]);
        TokenWidth width = magic switch
        {
            Magic16 => TokenWidth.UInt16,
            Magic32 => TokenWidth.UInt32,
            _ => throw new TokenFileFormatException(TokenFileError.BadMagic, 0, $"the magic number is {magic}; token files have {Magic16} (uint16 tokens) or {Magic32} (uint32 tokens)", path),
        };
        int expectedVersion = width == TokenWidth.UInt16 ? 1 : 7;
        if (version != expectedVersion)
            throw new TokenFileFormatException(TokenFileError.UnsupportedVersion, 4, $"version {version}; files with magic {magic} have version {expectedVersion}", path);
        if (count < 0)
            throw new TokenFileFormatException(TokenFileError.InvalidCount, 8, $"the header announces {count} tokens", path);
        long expectedLength = HeaderBytes + (long)count * Size(width);
        if (length < expectedLength)
            throw new TokenFileFormatException(TokenFileError.Truncated, length, $"the header announces {count} tokens ({expectedLength} bytes with the header) but the file has {length} bytes", path);
        if (length > expectedLength)
            throw new TokenFileFormatException(TokenFileError.TrailingBytes, expectedLength, $"{length - expectedLength} bytes follow the {count} tokens the header announces", path);
        if (count == 0) return new TokenFile(path, width, 0, null, null);
        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, mapName: null, capacity: 0, MemoryMappedFileAccess.Read);
        try
        {
            var view = map.CreateViewAccessor(HeaderBytes, expectedLength - HeaderBytes, MemoryMappedFileAccess.Read);
            return new TokenFile(path, width, count, map, view);
        }
        catch
        {
            map.Dispose();
            throw;
        }
    }

    private static int Size(TokenWidth width) => width == TokenWidth.UInt16 ? 2 : 4;

    /// <summary>The token at <paramref name="index"/>.</summary>
    public int this[long index]
    {
        get
        {
            if ((ulong)index >= (ulong)Length) throw new ArgumentOutOfRangeException(nameof(index), index, $"{Path} holds {Length} tokens.");
            Span<int> one = stackalloc int[1];
            CopyTo(index, one);
            return one[0];
        }
    }

    /// <inheritdoc/>
    public unsafe void CopyTo(long start, Span<int> destination)
    {
        if (start < 0 || start + destination.Length > Length)
            throw new ArgumentOutOfRangeException(nameof(start), start, $"Tokens {start}..{start + destination.Length} are outside {Path}'s {Length}.");
        if (destination.Length == 0) return;
        var handle = _view!.SafeMemoryMappedViewHandle;
        byte* pointer = null;
        handle.AcquirePointer(ref pointer);
        try
        {
            pointer += _view.PointerOffset;
            if (Width == TokenWidth.UInt16)
            {
                var source = new ReadOnlySpan<ushort>(pointer + start * 2, destination.Length);
                for (int i = 0; i < source.Length; i++) destination[i] = source[i];
            }
            else
            {
                new ReadOnlySpan<int>(pointer + start * 4, destination.Length).CopyTo(destination);
                for (int i = 0; i < destination.Length; i++)
                    if (destination[i] < 0) throw new InvalidDataException($"{Path}: token {start + i} is {(uint)destination[i]}, above the largest id Kiln uses ({int.MaxValue}).");
            }
        }
        finally { handle.ReleasePointer(); }
    }

    /// <summary>All the tokens as an array (for files that fit in memory).</summary>
    public int[] ToArray()
    {
        var all = new int[checked((int)Length)];
        CopyTo(0, all);
        return all;
    }

    /// <summary>
    /// Writes <paramref name="tokens"/> as a token file at <paramref name="path"/>, atomically: uint16 when every id is
    /// below 65,536 (or as <paramref name="width"/> says), uint32 otherwise.
    /// </summary>
    /// <exception cref="ArgumentException">A negative id, an id that does not fit the width, or more than 2³¹−1 tokens.</exception>
    public static void Write(string path, ReadOnlySpan<int> tokens, TokenWidth? width = null)
    {
        int max = 0;
        for (int i = 0; i < tokens.Length; i++)
        {
            if (tokens[i] < 0) throw new ArgumentException($"Token {i} is {tokens[i]}; token ids are non-negative.", nameof(tokens));
            max = Math.Max(max, tokens[i]);
        }
        var w = width ?? (max < 65536 ? TokenWidth.UInt16 : TokenWidth.UInt32);
        if (w == TokenWidth.UInt16 && max >= 65536)
            throw new ArgumentException($"Token id {max} does not fit a uint16 token file; write it with TokenWidth.UInt32.", nameof(width));
        var header = new byte[HeaderBytes];
        BinaryPrimitives.WriteInt32LittleEndian(header, w == TokenWidth.UInt16 ? Magic16 : Magic32);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(4), w == TokenWidth.UInt16 ? 1 : 7);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(8), tokens.Length);
        var body = new byte[(long)tokens.Length * Size(w)];
        if (w == TokenWidth.UInt16)
        {
            var u16 = MemoryMarshal.Cast<byte, ushort>(body.AsSpan());
            for (int i = 0; i < tokens.Length; i++) u16[i] = (ushort)tokens[i];
        }
        else MemoryMarshal.AsBytes(tokens).CopyTo(body);
        AtomicFile.Write(path, s => { s.Write(header); s.Write(body); });
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _view?.Dispose();
        _map?.Dispose();
    }
}
