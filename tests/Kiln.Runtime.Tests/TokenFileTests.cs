using System;
using System.Buffers.Binary;
using System.IO;
using System.Linq;

namespace Kiln.Runtime.Tests;

/// <summary>
/// Token files in llm.c's layout: round trips in both widths (bytes checked against the layout), memory-mapped reads
/// through <see cref="TokenWindows"/>, and files that lie — bad magic, unknown version, negative count, cut anywhere,
/// trailing bytes — refused with the rule and the byte offset. Also the keyed permutation large datasets shuffle with.
/// </summary>
public sealed class TokenFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kiln-tokens-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    [Fact]
    public void Small_vocabularies_are_written_as_uint16_in_llm_c_layout_and_read_back()
    {
        var tokens = new[] { 0, 1, 50256, 65535, 7 };
        TokenFile.Write(PathOf("a.bin"), tokens);
        var bytes = File.ReadAllBytes(PathOf("a.bin"));
        Assert.Equal(1024 + 5 * 2, bytes.Length);
        Assert.Equal(20240520, BinaryPrimitives.ReadInt32LittleEndian(bytes));
        Assert.Equal(1, BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(4)));
        Assert.Equal(5, BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(8)));
        Assert.All(Enumerable.Range(3, 253), i => Assert.Equal(0, BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(i * 4))));
        Assert.Equal(50256, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(1024 + 4)));
        using var file = TokenFile.Open(PathOf("a.bin"));
        Assert.Equal(TokenWidth.UInt16, file.Width);
        Assert.Equal(tokens, file.ToArray());
        Assert.Equal(65535, file[3]);
        Assert.Throws<ArgumentOutOfRangeException>(() => file[5]);
    }

    [Fact]
    public void Large_vocabularies_are_written_as_uint32_with_the_llama_layout()
    {
        var tokens = new[] { 200_000, 3, 128_255 };
        TokenFile.Write(PathOf("b.bin"), tokens);
        var bytes = File.ReadAllBytes(PathOf("b.bin"));
        Assert.Equal(20240801, BinaryPrimitives.ReadInt32LittleEndian(bytes));
        Assert.Equal(7, BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(4)));
        using var file = TokenFile.Open(PathOf("b.bin"));
        Assert.Equal(TokenWidth.UInt32, file.Width);
        Assert.Equal(tokens, file.ToArray());
        Assert.Contains("UInt32", Assert.Throws<ArgumentException>(() => TokenFile.Write(PathOf("c.bin"), tokens, TokenWidth.UInt16)).Message);
        Assert.Throws<ArgumentException>(() => TokenFile.Write(PathOf("c.bin"), new[] { -1 }));
    }

    [Fact]
    public void Windows_read_from_a_mapped_file_as_from_memory()
    {
        var tokens = Enumerable.Range(0, 3000).Select(i => (i * 7919) % 50000).ToArray();
        TokenFile.Write(PathOf("w.bin"), tokens);
        using var file = TokenFile.Open(PathOf("w.bin"));
        var fromFile = new TokenWindows(file, context: 16, stride: 3, start: 100, length: 2000);
        var fromMemory = new TokenWindows(tokens.AsMemory(100, 2000), context: 16, stride: 3);
        Assert.Equal(fromMemory.Count, fromFile.Count);
        var indices = new[] { 0, 5, fromFile.Count - 1, 17 };
        Assert.Equal(fromMemory.GetBatch(indices)["idx"].Ints, fromFile.GetBatch(indices)["idx"].Ints);
        Assert.Equal(fromMemory.GetBatch(indices)["targets"].Ints, fromFile.GetBatch(indices)["targets"].Ints);
        Assert.Throws<ArgumentException>(() => new TokenWindows(file, 16, start: 2990, length: 20));
    }

    private static byte[] Header(int magic, int version, int count)
    {
        var header = new byte[1024];
        BinaryPrimitives.WriteInt32LittleEndian(header, magic);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(4), version);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(8), count);
        return header;
    }

    private TokenFileFormatException Refused(byte[] bytes)
    {
        File.WriteAllBytes(PathOf("bad.bin"), bytes);
        return Assert.Throws<TokenFileFormatException>(() => TokenFile.Open(PathOf("bad.bin")).Dispose());
    }

    [Fact]
    public void Files_that_lie_are_refused_with_the_rule_and_the_offset()
    {
        Assert.Equal(TokenFileError.BadMagic, Refused(Header(1234, 1, 0)).Error);
        var version = Refused(Header(20240520, 2, 0));
        Assert.Equal(TokenFileError.UnsupportedVersion, version.Error);
        Assert.Equal(4, version.Offset);
        Assert.Equal(TokenFileError.UnsupportedVersion, Refused(Header(20240801, 1, 0)).Error);
        Assert.Equal(TokenFileError.InvalidCount, Refused(Header(20240520, 1, -5)).Error);
        var trailing = Refused(Header(20240520, 1, 2).Concat(new byte[5]).ToArray());
        Assert.Equal(TokenFileError.TrailingBytes, trailing.Error);
        Assert.Equal(1028, trailing.Offset);
        var huge = Refused(Header(20240520, 1, int.MaxValue));
        Assert.Equal(TokenFileError.Truncated, huge.Error);
        Assert.Contains("2147483647 tokens", huge.Message);

        // Cut at every byte of the header and of the tokens.
        TokenFile.Write(PathOf("ok.bin"), new[] { 1, 2, 3 });
        var whole = File.ReadAllBytes(PathOf("ok.bin"));
        for (int cut = 0; cut < whole.Length; cut++)
        {
            var e = Refused(whole[..cut]);
            Assert.Equal(cut < 1024 ? TokenFileError.HeaderTooSmall : TokenFileError.Truncated, e.Error);
            Assert.Equal(cut, e.Offset);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(1000)]
    [InlineData(4099)]
    public void The_keyed_permutation_visits_every_position_once_and_depends_on_its_key(int n)
    {
        var p = new KeyedPermutation(n, 42, 7);
        var values = Enumerable.Range(0, n).Select(i => p[i]).ToArray();
        Assert.Equal(Enumerable.Range(0, n).Select(i => (long)i), values.Order());
        if (n >= 1000)
        {
            var other = new KeyedPermutation(n, 43, 7);
            Assert.True(Enumerable.Range(0, n).Count(i => other[i] == values[i]) < n / 20, "another key gives a different order");
            Assert.True(Enumerable.Range(0, n).Count(i => values[i] == i) < n / 20, "the order is shuffled");
        }
    }
}
