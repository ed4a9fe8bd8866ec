using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;

namespace Kiln.Runtime;

/// <summary>The element types of the safetensors format (its stable list; anything else is refused).</summary>
public enum SafeTensorType
{
    /// <summary>BOOL, one byte.</summary>
    Bool,
    /// <summary>U8.</summary>
    U8,
    /// <summary>I8.</summary>
    I8,
    /// <summary>F8_E5M2.</summary>
    F8E5M2,
    /// <summary>F8_E4M3.</summary>
    F8E4M3,
    /// <summary>I16.</summary>
    I16,
    /// <summary>U16.</summary>
    U16,
    /// <summary>F16 (IEEE half).</summary>
    F16,
    /// <summary>BF16 (bfloat16).</summary>
    BF16,
    /// <summary>I32.</summary>
    I32,
    /// <summary>U32.</summary>
    U32,
    /// <summary>F32.</summary>
    F32,
    /// <summary>F64.</summary>
    F64,
    /// <summary>I64.</summary>
    I64,
    /// <summary>U64.</summary>
    U64,
}

/// <summary>What is wrong with a safetensors file (see <see cref="SafeTensorsFormatException"/>).</summary>
public enum SafeTensorsError
{
    /// <summary>Shorter than the 8-byte header length.</summary>
    HeaderTooSmall,
    /// <summary>The header length is over the format's 100 MB cap.</summary>
    HeaderTooLarge,
    /// <summary>The header length points past the end of the file.</summary>
    HeaderPastEnd,
    /// <summary>The header is not UTF-8 JSON, or not one JSON object.</summary>
    InvalidHeader,
    /// <summary>A tensor name (or a metadata key) appears twice.</summary>
    DuplicateName,
    /// <summary>A tensor entry lacks dtype, shape or data_offsets, has another key, or has a value of the wrong kind.</summary>
    InvalidEntry,
    /// <summary>A dtype outside the format's list.</summary>
    UnknownType,
    /// <summary>A shape that is not a list of non-negative integers.</summary>
    InvalidShape,
    /// <summary>data_offsets that are not two non-negative integers with begin ≤ end.</summary>
    InvalidOffsets,
    /// <summary>The element count times the element size overflows.</summary>
    SizeOverflow,
    /// <summary>The byte range does not hold exactly shape × element size bytes.</summary>
    SizeMismatch,
    /// <summary>Two tensors' bytes overlap.</summary>
    Overlap,
    /// <summary>Bytes between two tensors (or before the first) belong to none.</summary>
    Gap,
    /// <summary>A tensor's bytes run past the end of the file (a truncated file).</summary>
    Truncated,
    /// <summary>Bytes after the last tensor.</summary>
    TrailingBytes,
    /// <summary><c>__metadata__</c> is not an object of strings.</summary>
    InvalidMetadata,
}

/// <summary>
/// A data file (a checkpoint, a token file) that breaks its format: the file, the byte offset where the problem is,
/// and what was found. Reading never trusts a length or an offset in the file before checking it.
/// </summary>
public class InvalidFileFormatException : IOException
{
    /// <summary>Creates the exception; the message is <c>file: problem at byte offset: detail</c>.</summary>
    public InvalidFileFormatException(string problem, long offset, string detail, string? file)
        : base($"{file ?? "data"}: {problem} at byte {offset.ToString(CultureInfo.InvariantCulture)}: {detail}")
    {
        Offset = offset;
        File = file;
    }

    /// <summary>The byte offset in the file where the problem is.</summary>
    public long Offset { get; }

    /// <summary>The file, when the data came from one.</summary>
    public string? File { get; }
}

/// <summary>A safetensors file that breaks the format: which rule (<see cref="Error"/>) and where.</summary>
public sealed class SafeTensorsFormatException : InvalidFileFormatException
{
    /// <summary>Creates the exception.</summary>
    public SafeTensorsFormatException(SafeTensorsError error, long offset, string detail, string? file = null)
        : base(Describe(error), offset, detail, file) => Error = error;

    /// <summary>The rule that was broken.</summary>
    public SafeTensorsError Error { get; }

    private static string Describe(SafeTensorsError error) => error switch
    {
        SafeTensorsError.HeaderTooSmall => "too short for a safetensors header",
        SafeTensorsError.HeaderTooLarge => "header length over the 100 MB limit",
        SafeTensorsError.HeaderPastEnd => "header runs past the end of the file",
        SafeTensorsError.InvalidHeader => "the header is not one UTF-8 JSON object",
        SafeTensorsError.DuplicateName => "a name appears twice",
        SafeTensorsError.InvalidEntry => "malformed tensor entry",
        SafeTensorsError.UnknownType => "unknown dtype",
        SafeTensorsError.InvalidShape => "invalid shape",
        SafeTensorsError.InvalidOffsets => "invalid data_offsets",
        SafeTensorsError.SizeOverflow => "tensor size overflows",
        SafeTensorsError.SizeMismatch => "byte range does not match the shape and dtype",
        SafeTensorsError.Overlap => "tensors overlap",
        SafeTensorsError.Gap => "bytes that belong to no tensor",
        SafeTensorsError.Truncated => "the file is truncated",
        SafeTensorsError.TrailingBytes => "bytes after the last tensor",
        SafeTensorsError.InvalidMetadata => "__metadata__ must map strings to strings",
        _ => error.ToString(),
    };
}

/// <summary>One tensor of a safetensors file: its name, element type, shape and byte range (relative to the data).</summary>
public sealed record SafeTensorInfo(string Name, SafeTensorType Type, IReadOnlyList<long> Shape, long Begin, long End)
{
    /// <summary>Bytes the tensor occupies.</summary>
    public long ByteLength => End - Begin;

    /// <summary>Number of elements (the product of the shape; 1 for a scalar).</summary>
    public long ElementCount => ByteLength / SafeTensors.ElementSize(Type);
}

/// <summary>The safetensors format: names and sizes of element types, and the header parser every reader uses.</summary>
public static class SafeTensors
{
    /// <summary>The format's cap on the JSON header (the reference implementation's MAX_HEADER_SIZE).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private static readonly (SafeTensorType Type, string Name, int Size)[] Types =
    {
        (SafeTensorType.Bool, "BOOL", 1), (SafeTensorType.U8, "U8", 1), (SafeTensorType.I8, "I8", 1),
        (SafeTensorType.F8E5M2, "F8_E5M2", 1), (SafeTensorType.F8E4M3, "F8_E4M3", 1),
        (SafeTensorType.I16, "I16", 2), (SafeTensorType.U16, "U16", 2), (SafeTensorType.F16, "F16", 2), (SafeTensorType.BF16, "BF16", 2),
        (SafeTensorType.I32, "I32", 4), (SafeTensorType.U32, "U32", 4), (SafeTensorType.F32, "F32", 4),
        (SafeTensorType.F64, "F64", 8), (SafeTensorType.I64, "I64", 8), (SafeTensorType.U64, "U64", 8),
    };

    /// <summary>Kiln reads and writes tensor bytes in place, which the format's little-endian layout allows only on little-endian machines.</summary>
    internal static void RequireLittleEndian()
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors data is little-endian; Kiln reads and writes it only on little-endian machines.");
    }

    /// <summary>Bytes per element of <paramref name="type"/>.</summary>
    public static int ElementSize(SafeTensorType type) => Types[(int)type].Size;

    /// <summary>The dtype string the format writes for <paramref name="type"/> (<c>F32</c>, <c>BF16</c>, …).</summary>
    public static string TypeName(SafeTensorType type) => Types[(int)type].Name;

    /// <summary>The type whose dtype string is <paramref name="name"/>; false for any other string.</summary>
    public static bool TryParseType(string name, out SafeTensorType type)
    {
        foreach (var t in Types)
            if (string.Equals(t.Name, name, StringComparison.Ordinal)) { type = t.Type; return true; }
        type = default;
        return false;
    }

    /// <summary>
    /// Reads the 8-byte header length of a file of <paramref name="fileLength"/> bytes from <paramref name="prefix"/>
    /// and checks it before anything is allocated: at most <see cref="MaxHeaderBytes"/> and inside the file.
    /// </summary>
    internal static int HeaderLength(ReadOnlySpan<byte> prefix, long fileLength, string? file)
    {
        if (fileLength < 8 || prefix.Length < 8)
            throw new SafeTensorsFormatException(SafeTensorsError.HeaderTooSmall, 0, $"the file has {fileLength} bytes; a safetensors file starts with an 8-byte header length", file);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (n > MaxHeaderBytes)
            throw new SafeTensorsFormatException(SafeTensorsError.HeaderTooLarge, 0, $"the header length is {n} bytes; the format allows at most {MaxHeaderBytes}", file);
        if ((long)n > fileLength - 8)
            throw new SafeTensorsFormatException(SafeTensorsError.HeaderPastEnd, 8, $"the header length is {n} bytes but only {fileLength - 8} follow the length", file);
        return (int)n;
    }

    /// <summary>
    /// Parses and validates a header (the <paramref name="header"/> bytes after the length) of a file of
    /// <paramref name="fileLength"/> bytes: every rule of the format, strictly (see <see cref="SafeTensorsError"/>).
    /// </summary>
    internal static (List<SafeTensorInfo> Tensors, Dictionary<string, string> Metadata) ParseHeader(ReadOnlySpan<byte> header, long fileLength, string? file)
    {
        const long Base = 8;
        if (header.Length == 0 || header[0] != (byte)'{')
            throw new SafeTensorsFormatException(SafeTensorsError.InvalidHeader, Base, "the header must start with '{'", file);
        var tensors = new List<SafeTensorInfo>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var names = new HashSet<string>(StringComparer.Ordinal);
        var reader = new Utf8JsonReader(header, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 8 });
        long At(ref Utf8JsonReader r) => Base + r.TokenStartIndex;
        SafeTensorsFormatException Fail(SafeTensorsError error, long offset, string detail) => new(error, offset, detail, file);
        try
        {
            reader.Read(); // '{'
            while (true)
            {
                if (!reader.Read()) throw Fail(SafeTensorsError.InvalidHeader, Base + header.Length, "the header ends inside the JSON object");
                if (reader.TokenType == JsonTokenType.EndObject) break;
                long nameAt = At(ref reader);
                string name = reader.GetString()!;
                if (!names.Add(name)) throw Fail(SafeTensorsError.DuplicateName, nameAt, $"'{name}' is defined twice");
                if (name == "__metadata__") ReadMetadata(ref reader, metadata);
                else tensors.Add(ReadEntry(ref reader, name, nameAt));
            }
            if (reader.Read()) throw Fail(SafeTensorsError.InvalidHeader, At(ref reader), "JSON after the header object");
        }
        catch (JsonException e)
        {
            throw Fail(SafeTensorsError.InvalidHeader, Base + reader.BytesConsumed, "not valid UTF-8 JSON: " + e.Message);
        }
        catch (InvalidOperationException e)
        {
            throw Fail(SafeTensorsError.InvalidHeader, Base + reader.BytesConsumed, "not valid UTF-8 JSON: " + e.Message);
        }

        // The bytes after the header: every tensor in turn, contiguous, nothing before, between or after.
        long dataStart = Base + header.Length, dataLength = fileLength - dataStart;
        var ordered = tensors.OrderBy(t => t.Begin).ThenBy(t => t.End).ToList();
        long expected = 0;
        foreach (var t in ordered)
        {
            if (t.Begin > expected)
                throw Fail(SafeTensorsError.Gap, dataStart + expected, $"bytes {expected}..{t.Begin} of the data belong to no tensor (the next one, '{t.Name}', begins at {t.Begin})");
            if (t.Begin < expected)
                throw Fail(SafeTensorsError.Overlap, dataStart + t.Begin, $"'{t.Name}' begins at {t.Begin}, inside the bytes of the tensor before it (which end at {expected})");
            expected = t.End;
        }
        if (expected > dataLength)
        {
            var last = ordered[^1];
            throw Fail(SafeTensorsError.Truncated, fileLength, $"'{last.Name}' ends at data byte {last.End} but the file holds {dataLength} data bytes");
        }
        if (expected < dataLength)
            throw Fail(SafeTensorsError.TrailingBytes, dataStart + expected, $"{dataLength - expected} bytes follow the last tensor");
        return (tensors, metadata);

        void ReadMetadata(ref Utf8JsonReader r, Dictionary<string, string> into)
        {
            r.Read();
            if (r.TokenType != JsonTokenType.StartObject) throw Fail(SafeTensorsError.InvalidMetadata, At(ref r), "__metadata__ is not an object");
            while (true)
            {
                r.Read();
                if (r.TokenType == JsonTokenType.EndObject) return;
                long keyAt = At(ref r);
                string key = r.GetString()!;
                r.Read();
                if (r.TokenType != JsonTokenType.String) throw Fail(SafeTensorsError.InvalidMetadata, At(ref r), $"the value of '{key}' is a {r.TokenType}, not a string");
                if (!into.TryAdd(key, r.GetString()!)) throw Fail(SafeTensorsError.DuplicateName, keyAt, $"metadata key '{key}' is defined twice");
            }
        }

        SafeTensorInfo ReadEntry(ref Utf8JsonReader r, string name, long nameAt)
        {
            r.Read();
            if (r.TokenType != JsonTokenType.StartObject) throw Fail(SafeTensorsError.InvalidEntry, At(ref r), $"'{name}' is not an object with dtype, shape and data_offsets");
            SafeTensorType? type = null;
            List<long>? shape = null, offsets = null;
            while (true)
            {
                r.Read();
                if (r.TokenType == JsonTokenType.EndObject) break;
                long keyAt = At(ref r);
                string key = r.GetString()!;
                switch (key)
                {
                    case "dtype" when type is null:
                        r.Read();
                        if (r.TokenType != JsonTokenType.String) throw Fail(SafeTensorsError.InvalidEntry, At(ref r), $"the dtype of '{name}' is not a string");
                        string typeName = r.GetString()!;
                        if (!TryParseType(typeName, out var parsed))
                            throw Fail(SafeTensorsError.UnknownType, At(ref r), $"'{name}' has dtype '{typeName}'; known: {string.Join(", ", Types.Select(t => t.Name))}");
                        type = parsed;
                        break;
                    case "shape" when shape is null:
                        shape = ReadIntegers(ref r, name, "shape", SafeTensorsError.InvalidShape);
                        break;
                    case "data_offsets" when offsets is null:
                        offsets = ReadIntegers(ref r, name, "data_offsets", SafeTensorsError.InvalidOffsets);
                        if (offsets.Count != 2) throw Fail(SafeTensorsError.InvalidOffsets, keyAt, $"'{name}' has {offsets.Count} data_offsets; it needs [begin, end]");
                        if (offsets[1] < offsets[0]) throw Fail(SafeTensorsError.InvalidOffsets, keyAt, $"'{name}' ends ({offsets[1]}) before it begins ({offsets[0]})");
                        break;
                    case "dtype" or "shape" or "data_offsets":
                        throw Fail(SafeTensorsError.DuplicateName, keyAt, $"'{name}' defines {key} twice");
                    default:
                        throw Fail(SafeTensorsError.InvalidEntry, keyAt, $"'{name}' has the key '{key}'; an entry has exactly dtype, shape and data_offsets");
                }
            }
            if (type is null || shape is null || offsets is null)
                throw Fail(SafeTensorsError.InvalidEntry, nameAt, $"'{name}' lacks {(type is null ? "dtype" : shape is null ? "shape" : "data_offsets")}");
            long bytes = ElementSize(type.Value);
            try
            {
                foreach (var d in shape) bytes = checked(bytes * d);
            }
            catch (OverflowException)
            {
                throw Fail(SafeTensorsError.SizeOverflow, nameAt, $"'{name}' of shape [{string.Join(", ", shape)}] × {ElementSize(type.Value)} bytes overflows");
            }
            if (offsets[1] - offsets[0] != bytes)
                throw Fail(SafeTensorsError.SizeMismatch, nameAt,
                    $"'{name}' ({TypeName(type.Value)} [{string.Join(", ", shape)}]) needs {bytes} bytes but data_offsets [{offsets[0]}, {offsets[1]}] hold {offsets[1] - offsets[0]}");
            return new SafeTensorInfo(name, type.Value, shape.ToArray(), offsets[0], offsets[1]);
        }

        List<long> ReadIntegers(ref Utf8JsonReader r, string name, string what, SafeTensorsError error)
        {
            r.Read();
            if (r.TokenType != JsonTokenType.StartArray) throw Fail(error, At(ref r), $"the {what} of '{name}' is not a list");
            var values = new List<long>();
            while (true)
            {
                r.Read();
                if (r.TokenType == JsonTokenType.EndArray) return values;
                if (r.TokenType != JsonTokenType.Number || !r.TryGetInt64(out long v) || v < 0)
                    throw Fail(error, At(ref r), $"the {what} of '{name}' holds '{Encoding.UTF8.GetString(r.ValueSpan)}', not a non-negative integer");
                values.Add(v);
            }
        }
    }
}

/// <summary>
/// A safetensors file opened for reading: the header is read and validated at once (every rule of the format; a
/// broken file is a <see cref="SafeTensorsFormatException"/> naming the rule and the byte offset), tensors are read
/// when asked for.
/// </summary>
public sealed class SafeTensorsFile : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly Dictionary<string, SafeTensorInfo> _byName;
    private readonly long _dataStart;

    private SafeTensorsFile(string path, SafeFileHandle handle, List<SafeTensorInfo> tensors, Dictionary<string, string> metadata, long dataStart)
    {
        Path = path;
        _handle = handle;
        Tensors = tensors;
        Metadata = metadata;
        _dataStart = dataStart;
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>The tensors, in header order.</summary>
    public IReadOnlyList<SafeTensorInfo> Tensors { get; }

    /// <summary>The <c>__metadata__</c> strings (empty when the file has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Opens and validates <paramref name="path"/>.</summary>
    /// <exception cref="SafeTensorsFormatException">The file breaks the format.</exception>
    public static SafeTensorsFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        SafeTensors.RequireLittleEndian();
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            long length = RandomAccess.GetLength(handle);
            Span<byte> prefix = stackalloc byte[8];
            int got = length >= 8 ? RandomAccess.Read(handle, prefix, 0) : 0;
            int n = SafeTensors.HeaderLength(prefix[..got], length, path);
            var header = new byte[n];
            if (RandomAccess.Read(handle, header, 8) != n)
                throw new SafeTensorsFormatException(SafeTensorsError.HeaderPastEnd, 8, "the file changed while it was read", path);
            var (tensors, metadata) = SafeTensors.ParseHeader(header, length, path);
            return new SafeTensorsFile(path, handle, tensors, metadata, 8 + n);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Whether the file has a tensor named <paramref name="name"/>.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>The tensor named <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">No such tensor (the message lists a few that exist).</exception>
    public SafeTensorInfo this[string name] => _byName.TryGetValue(name, out var t) ? t
        : throw new KeyNotFoundException($"{Path} has no tensor '{name}' (it has {Tensors.Count}: {string.Join(", ", Tensors.Take(8).Select(x => x.Name))}{(Tensors.Count > 8 ? ", …" : "")}).");

    /// <summary>The raw little-endian bytes of a tensor.</summary>
    public byte[] ReadBytes(string name)
    {
        var t = this[name];
        if (t.ByteLength > Array.MaxLength) throw new NotSupportedException($"'{name}' has {t.ByteLength} bytes, more than one array holds.");
        var bytes = new byte[t.ByteLength];
        ReadExactly(t, bytes);
        return bytes;
    }

    /// <summary>A floating-point tensor (F32, F16, BF16 or F64) converted to float, row-major.</summary>
    /// <exception cref="InvalidOperationException">The tensor is not floating point.</exception>
    public float[] ReadFloats(string name)
    {
        var t = this[name];
        if (t.ElementCount > Array.MaxLength) throw new NotSupportedException($"'{name}' has {t.ElementCount} elements, more than one array holds.");
        var values = new float[t.ElementCount];
        ReadFloats(name, values);
        return values;
    }

    /// <summary>A floating-point tensor converted into <paramref name="destination"/>, which must hold exactly its elements.</summary>
    public void ReadFloats(string name, Span<float> destination)
    {
        var t = this[name];
        if (destination.Length != t.ElementCount)
            throw new ArgumentException($"'{name}' has {t.ElementCount} elements; the destination holds {destination.Length}.", nameof(destination));
        switch (t.Type)
        {
            case SafeTensorType.F32:
                ReadExactly(t, MemoryMarshal.AsBytes(destination));
                break;
            case SafeTensorType.F16:
            case SafeTensorType.BF16:
            {
                var raw = new ushort[t.ElementCount];
                ReadExactly(t, MemoryMarshal.AsBytes(raw.AsSpan()));
                for (int i = 0; i < raw.Length; i++)
                {
                    ushort bits = raw[i];
                    destination[i] = t.Type == SafeTensorType.F16 ? (float)BitConverter.UInt16BitsToHalf(bits) : BitConverter.Int32BitsToSingle(bits << 16);
                }
                break;
            }
            case SafeTensorType.F64:
            {
                var raw = new double[t.ElementCount];
                ReadExactly(t, MemoryMarshal.AsBytes(raw.AsSpan()));
                for (int i = 0; i < raw.Length; i++)
                    destination[i] = (float)raw[i];
                break;
            }
            default:
                throw new InvalidOperationException($"'{name}' in {Path} is {SafeTensors.TypeName(t.Type)}, not a floating-point tensor; read it with ReadBytes.");
        }
    }

    private void ReadExactly(SafeTensorInfo t, Span<byte> destination)
    {
        long offset = _dataStart + t.Begin;
        while (destination.Length > 0)
        {
            int n = RandomAccess.Read(_handle, destination, offset);
            if (n <= 0) throw new SafeTensorsFormatException(SafeTensorsError.Truncated, offset, $"the file ended while '{t.Name}' was read (was it changed?)", Path);
            destination = destination[n..];
            offset += n;
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _handle.Dispose();
}

/// <summary>
/// Writes a safetensors file the way the reference implementation does: a compact JSON header padded with spaces to
/// a multiple of 8 bytes, tensors ordered by descending element size and then name (so each is aligned for its type),
/// little-endian data, contiguous.
/// </summary>
public sealed class SafeTensorsWriter
{
    private readonly List<(string Name, SafeTensorType Type, long[] Shape, long Bytes, Action<Stream> Write)> _tensors = new();
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    /// <summary>The <c>__metadata__</c> strings to write.</summary>
    public Dictionary<string, string> Metadata { get; } = new(StringComparer.Ordinal);

    /// <summary>Adds an F32 tensor of <paramref name="shape"/> whose values are <paramref name="data"/> (read when the file is written).</summary>
    public SafeTensorsWriter Add(string name, ReadOnlyMemory<float> data, params long[] shape)
    {
        Check(name, shape, data.Length, SafeTensorType.F32);
        _tensors.Add((name, SafeTensorType.F32, (long[])shape.Clone(), (long)data.Length * 4, s => WriteFloats(s, data.Span)));
        return this;
    }

    /// <summary>Adds a tensor of any type from its little-endian bytes.</summary>
    public SafeTensorsWriter Add(string name, SafeTensorType type, ReadOnlyMemory<byte> bytes, params long[] shape)
    {
        int size = SafeTensors.ElementSize(type);
        if (bytes.Length % size != 0) throw new ArgumentException($"'{name}': {bytes.Length} bytes are not a whole number of {SafeTensors.TypeName(type)} elements.", nameof(bytes));
        Check(name, shape, bytes.Length / size, type);
        _tensors.Add((name, type, (long[])shape.Clone(), bytes.Length, s => s.Write(bytes.Span)));
        return this;
    }

    private void Check(string name, long[] shape, long elements, SafeTensorType type)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(shape);
        if (name.Length == 0 || name == "__metadata__") throw new ArgumentException($"'{name}' cannot name a tensor.", nameof(name));
        if (!_names.Add(name)) throw new ArgumentException($"A tensor named '{name}' was already added.", nameof(name));
        long count = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"'{name}': the shape [{string.Join(", ", shape)}] has a negative size.", nameof(shape));
            count = checked(count * d);
        }
        if (count != elements)
            throw new ArgumentException($"'{name}': the shape [{string.Join(", ", shape)}] holds {count} elements but {elements} {SafeTensors.TypeName(type)} values were given.", nameof(shape));
    }

    /// <summary>Writes the file to <paramref name="stream"/>.</summary>
    public void WriteTo(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        SafeTensors.RequireLittleEndian();
        var ordered = _tensors.OrderByDescending(t => SafeTensors.ElementSize(t.Type)).ThenBy(t => t.Name, StringComparer.Ordinal).ToList();
        using var json = new MemoryStream();
        using (var w = new Utf8JsonWriter(json, new JsonWriterOptions { Indented = false, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            if (Metadata.Count > 0)
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in Metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in ordered)
            {
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", SafeTensors.TypeName(t.Type));
                w.WriteStartArray("shape");
                foreach (var d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + t.Bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += t.Bytes;
            }
            w.WriteEndObject();
        }
        long padded = (json.Length + 7) / 8 * 8;
        if (padded > SafeTensors.MaxHeaderBytes)
            throw new InvalidOperationException($"The header would take {padded} bytes, over the format's {SafeTensors.MaxHeaderBytes}-byte limit; write fewer tensors per file.");
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)padded);
        stream.Write(prefix);
        stream.Write(json.GetBuffer().AsSpan(0, (int)json.Length));
        for (long i = json.Length; i < padded; i++) stream.WriteByte((byte)' ');
        foreach (var t in ordered) t.Write(stream);
    }

    /// <summary>Writes the file to <paramref name="path"/> atomically (see <see cref="AtomicFile"/>).</summary>
    public void Save(string path) => AtomicFile.Write(path, WriteTo);

    private static void WriteFloats(Stream stream, ReadOnlySpan<float> values) => stream.Write(MemoryMarshal.AsBytes(values));
}
