using System;
using System.Buffers.Binary;
using System.IO;
using System.Linq;
using System.Text;

namespace Kiln.Runtime.Tests;

/// <summary>
/// The safetensors reader and writer: the writer's bytes are the reference implementation's, values round-trip for
/// every type Kiln converts, and every malformed or hostile file is refused with the rule and the byte offset —
/// truncated anywhere, huge lengths, overlaps, gaps, duplicates, unknown types, trailing bytes — never with any other
/// exception.
/// </summary>
public sealed class SafeTensorsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kiln-safetensors-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(byte[] bytes, string name = "t.safetensors")
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static byte[] Bytes(SafeTensorsWriter writer)
    {
        using var ms = new MemoryStream();
        writer.WriteTo(ms);
        return ms.ToArray();
    }

    /// <summary>A file with <paramref name="json"/> as its header (padded with spaces to 8 bytes) and <paramref name="data"/> after it.</summary>
    private static byte[] Raw(string json, int data, ulong? headerLength = null)
    {
        var header = Encoding.UTF8.GetBytes(json);
        int padded = (header.Length + 7) / 8 * 8;
        var bytes = new byte[8 + padded + data];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, headerLength ?? (ulong)padded);
        header.CopyTo(bytes, 8);
        for (int i = 8 + header.Length; i < 8 + padded; i++) bytes[i] = (byte)' ';
        for (int i = 8 + padded; i < bytes.Length; i++) bytes[i] = (byte)i;
        return bytes;
    }

    private SafeTensorsFormatException Refused(byte[] bytes)
    {
        var path = Write(bytes);
        return Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.Open(path).Dispose());
    }

    [Fact]
    public void The_writer_produces_the_reference_layout()
    {
        // The reference implementation's own test vectors (safetensors tensor.rs).
        var one = Bytes(new SafeTensorsWriter().Add("attn.0", new float[6], 1, 2, 3));
        var expectedHeader = "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}";
        Assert.Equal(64UL, BinaryPrimitives.ReadUInt64LittleEndian(one));
        Assert.Equal(expectedHeader.PadRight(64), Encoding.UTF8.GetString(one, 8, 64));
        Assert.Equal(8 + 64 + 24, one.Length);

        var empty = Bytes(new SafeTensorsWriter());
        Assert.Equal(new byte[] { 8, 0, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'}', 32, 32, 32, 32, 32, 32 }, empty);
    }

    [Fact]
    public void Tensors_and_metadata_round_trip_aligned_for_their_types()
    {
        var f32 = new float[] { 1.5f, -2.25f, float.MaxValue, float.Epsilon, 0f, -0f };
        var bf16 = new ushort[] { 0x3F80, 0xC040, 0x7F80 };            // 1, -3, +inf
        var f16 = new ushort[] { 0x3C00, 0xB800, 0x7BFF };             // 1, -0.5, 65504
        var f64 = new double[] { Math.PI, -1e-30 };
        var i64 = new long[] { long.MinValue, 42 };
        var writer = new SafeTensorsWriter()
            .Add("w", f32, 2, 3)
            .Add("b16", SafeTensorType.BF16, ToBytes(bf16), 3)
            .Add("h16", SafeTensorType.F16, ToBytes(f16), 3)
            .Add("d", SafeTensorType.F64, ToBytes(f64), 2)
            .Add("ids", SafeTensorType.I64, ToBytes(i64), 2)
            .Add("scalar", new float[] { 7f })
            .Add("empty", Array.Empty<float>(), 0, 4);
        writer.Metadata["step"] = "12";
        writer.Metadata["note"] = "ünïcödé \"quoted\"";
        var path = Write(Bytes(writer));

        using var file = SafeTensorsFile.Open(path);
        Assert.Equal("12", file.Metadata["step"]);
        Assert.Equal("ünïcödé \"quoted\"", file.Metadata["note"]);
        Assert.Equal(f32, file.ReadFloats("w"));
        Assert.Equal(new long[] { 2, 3 }, file["w"].Shape);
        Assert.Equal(new float[] { 1, -3, float.PositiveInfinity }, file.ReadFloats("b16"));
        Assert.Equal(new float[] { 1, -0.5f, 65504 }, file.ReadFloats("h16"));
        Assert.Equal(new[] { (float)Math.PI, -1e-30f }, file.ReadFloats("d"));
        Assert.Equal(ToBytes(i64), file.ReadBytes("ids"));
        Assert.Empty(file["scalar"].Shape);
        Assert.Equal(new float[] { 7f }, file.ReadFloats("scalar"));
        Assert.Empty(file.ReadFloats("empty"));
        Assert.Throws<InvalidOperationException>(() => file.ReadFloats("ids"));
        Assert.Contains("has no tensor 'nope'", Assert.Throws<System.Collections.Generic.KeyNotFoundException>(() => file["nope"]).Message);
        // Ordered by element size, then name, so every tensor starts on a multiple of its element size.
        Assert.Equal(new[] { "d", "ids", "empty", "scalar", "w", "b16", "h16" }, file.Tensors.OrderBy(t => t.Begin).ThenBy(t => t.End).Select(t => t.Name));
        Assert.All(file.Tensors, t => Assert.Equal(0, t.Begin % SafeTensors.ElementSize(t.Type)));
    }

    private static byte[] ToBytes<T>(T[] values) where T : unmanaged => System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    [Fact]
    public void A_file_cut_short_anywhere_is_refused_with_the_place()
    {
        var whole = Bytes(new SafeTensorsWriter().Add("a", new float[] { 1, 2, 3 }, 3).Add("b", new float[] { 4 }, 1));
        int headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(whole);
        // Every length inside the length prefix and the header, and every length inside the data.
        for (int cut = 0; cut < whole.Length; cut++)
        {
            var e = Refused(whole[..cut]);
            var expected = cut < 8 ? SafeTensorsError.HeaderTooSmall : cut < headerEnd ? SafeTensorsError.HeaderPastEnd : SafeTensorsError.Truncated;
            Assert.True(e.Error == expected, $"cut at {cut}: {e.Error}, expected {expected}: {e.Message}");
            Assert.InRange(e.Offset, 0, cut);
            Assert.Contains($"at byte {e.Offset}", e.Message);
        }
        using var file = SafeTensorsFile.Open(Write(whole));
        Assert.Equal(2, file.Tensors.Count);
    }

    [Fact]
    public void Lengths_past_the_limit_or_the_file_are_refused_before_anything_is_allocated()
    {
        Assert.Equal(SafeTensorsError.HeaderTooLarge, Refused(Raw("{}", 0, ulong.MaxValue)).Error);
        Assert.Equal(SafeTensorsError.HeaderTooLarge, Refused(Raw("{}", 0, SafeTensors.MaxHeaderBytes + 1)).Error);
        var past = Refused(Raw("{}", 0, 1000));
        Assert.Equal(SafeTensorsError.HeaderPastEnd, past.Error);
        Assert.Equal(8, past.Offset);
        Assert.Contains("1000 bytes", past.Message);
    }

    [Theory]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, SafeTensorsError.Overlap)]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, SafeTensorsError.Gap)]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, SafeTensorsError.Gap)]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, SafeTensorsError.Truncated)]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 9, SafeTensorsError.TrailingBytes)]
    [InlineData("{}", 1, SafeTensorsError.TrailingBytes)]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, SafeTensorsError.DuplicateName)]
    [InlineData("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, SafeTensorsError.DuplicateName)]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, SafeTensorsError.DuplicateName)]
    [InlineData("{\"a\":{\"dtype\":\"F12\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, SafeTensorsError.UnknownType)]
    [InlineData("{\"a\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, SafeTensorsError.UnknownType)]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, SafeTensorsError.InvalidShape)]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, SafeTensorsError.InvalidShape)]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, SafeTensorsError.InvalidShape)]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]}}", 8, SafeTensorsError.InvalidShape)]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, SafeTensorsError.SizeOverflow)]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, SafeTensorsError.SizeMismatch)]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, SafeTensorsError.InvalidOffsets)]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}}", 8, SafeTensorsError.InvalidOffsets)]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,16]}}", 8, SafeTensorsError.InvalidOffsets)]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, SafeTensorsError.InvalidOffsets)]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, SafeTensorsError.InvalidEntry)]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"strides\":[1]}}", 8, SafeTensorsError.InvalidEntry)]
    [InlineData("{\"a\":[1,2]}", 0, SafeTensorsError.InvalidEntry)]
    [InlineData("{\"__metadata__\":{\"step\":12}}", 0, SafeTensorsError.InvalidMetadata)]
    [InlineData("{\"__metadata__\":[\"x\"]}", 0, SafeTensorsError.InvalidMetadata)]
    [InlineData(" {}", 0, SafeTensorsError.InvalidHeader)]
    [InlineData("[]", 0, SafeTensorsError.InvalidHeader)]
    [InlineData("{} {}", 0, SafeTensorsError.InvalidHeader)]
    [InlineData("{\"a\":", 0, SafeTensorsError.InvalidHeader)]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},}", 8, SafeTensorsError.InvalidHeader)]
    public void Malformed_headers_are_refused_naming_the_rule(string json, int dataBytes, SafeTensorsError error)
    {
        var e = Refused(Raw(json, dataBytes));
        Assert.True(e.Error == error, $"{e.Error} instead of {error}: {e.Message}");
        Assert.InRange(e.Offset, 0, Raw(json, dataBytes).Length);
    }

    [Fact]
    public void Invalid_utf8_in_the_header_is_refused()
    {
        var bytes = Raw("{\"aX\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
        bytes[8 + 3] = 0xFF; // the X
        Assert.Equal(SafeTensorsError.InvalidHeader, Refused(bytes).Error);
    }

    [Fact]
    public void Random_corruptions_of_the_header_are_either_valid_or_refused_as_format_errors()
    {
        int seed = TestSeed.Fresh();
        var rng = new Random(seed);
        var whole = Bytes(new SafeTensorsWriter().Add("weight", new float[12], 3, 4).Add("bias", new float[4], 4).Add("b16", SafeTensorType.BF16, new byte[6], 3));
        int headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(whole);
        for (int trial = 0; trial < 300; trial++)
        {
            var bytes = (byte[])whole.Clone();
            for (int k = rng.Next(1, 4); k > 0; k--) bytes[rng.Next(headerEnd)] = (byte)rng.Next(256);
            var path = Write(bytes);
            try { SafeTensorsFile.Open(path).Dispose(); }
            catch (SafeTensorsFormatException) { }
            catch (Exception other) { Assert.Fail($"seed {seed}, trial {trial}: {other.GetType().Name}: {other.Message}"); }
        }
    }

    [Fact]
    public void The_writer_refuses_shapes_that_do_not_match_and_repeated_names()
    {
        var w = new SafeTensorsWriter().Add("a", new float[6], 2, 3);
        Assert.Contains("already added", Assert.Throws<ArgumentException>(() => w.Add("a", new float[1], 1)).Message);
        Assert.Contains("holds 4 elements but 6", Assert.Throws<ArgumentException>(() => w.Add("b", new float[6], 2, 2)).Message);
        Assert.Throws<ArgumentException>(() => w.Add("__metadata__", new float[1], 1));
        Assert.Throws<ArgumentException>(() => w.Add("c", SafeTensorType.F16, new byte[3], 1));
    }

    [Fact]
    public void Saving_replaces_the_file_whole_and_leaves_no_temporary_files()
    {
        var path = Path.Combine(_dir, "ck.safetensors");
        new SafeTensorsWriter().Add("a", new float[] { 1 }, 1).Save(path);
        new SafeTensorsWriter().Add("a", new float[] { 2, 3 }, 2).Save(path);
        using (var file = SafeTensorsFile.Open(path)) Assert.Equal(new float[] { 2, 3 }, file.ReadFloats("a"));
        Assert.Equal(new[] { "ck.safetensors" }, Directory.GetFiles(_dir).Select(Path.GetFileName));
        // A writer that fails midway leaves the old file as it was, and no temporary file.
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, s => { s.WriteByte(1); throw new InvalidOperationException("boom"); }));
        using (var file = SafeTensorsFile.Open(path)) Assert.Equal(new float[] { 2, 3 }, file.ReadFloats("a"));
        Assert.Single(Directory.GetFiles(_dir));
        Assert.Throws<DirectoryNotFoundException>(() => AtomicFile.Write(Path.Combine(_dir, "missing", "x"), _ => { }));
    }
}
