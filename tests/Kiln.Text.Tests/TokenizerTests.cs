using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Reflection;
using Kiln;
using Kiln.Text;

namespace Kiln.Text.Tests;

/// <summary>
/// Tokenizers give the ids their reference implementations give (OpenAI's tiktoken values for "Hello, world!"), round
/// trip any text, and the converter writes token files that hold exactly the tokenized documents.
/// </summary>
public sealed class TokenizerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kiln-text-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly Lazy<TextTokenizer> Gpt2 = new(() => TextTokenizer.Create("gpt2"));

    [Theory]
    [InlineData("gpt2", new[] { 15496, 11, 995, 0 }, 50257, 50256)]
    [InlineData("r50k_base", new[] { 15496, 11, 995, 0 }, 50257, 50256)]
    [InlineData("cl100k_base", new[] { 9906, 11, 1917, 0 }, 100277, 100257)]
    [InlineData("o200k_base", new[] { 13225, 11, 2375, 0 }, 200019, 199999)]
    public void Tiktoken_encodings_give_the_reference_ids(string name, int[] hello, int vocabulary, int endOfText)
    {
        var t = TextTokenizer.Create(name);
        Assert.Equal(name, t.Name);
        Assert.Equal(hello, t.Encode("Hello, world!"));
        Assert.Equal(vocabulary, t.VocabularySize);
        Assert.Equal(endOfText, t.EndOfText);
        const string text = "Ünïcödé, emoji 🙂, 中文, tabs\tand\nnewlines — and  double  spaces.";
        Assert.Equal(text, t.Decode(t.Encode(text)));
        Assert.All(t.Encode(text), id => Assert.InRange(id, 0, vocabulary - 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Decode(new[] { vocabulary }));
    }

    [Fact]
    public void The_byte_tokenizer_needs_no_files_and_round_trips_utf8()
    {
        var t = TextTokenizer.Create("bytes");
        Assert.Equal(256, t.VocabularySize);
        Assert.Null(t.EndOfText);
        Assert.Equal(new[] { 72, 105, 0xC3, 0xA9 }, t.Encode("Hié"));
        Assert.Equal("🙂 ok", t.Decode(t.Encode("🙂 ok")));
        Assert.Equal("\uFFFD", t.Decode(new[] { 0xFF }));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Decode(new[] { 256 }));
    }

    [Fact]
    public void Unknown_tokenizers_are_refused_with_the_known_names()
    {
        var e = Assert.Throws<ArgumentException>(() => TextTokenizer.Create("llama"));
        Assert.Contains("gpt2", e.Message);
        Assert.Contains("o200k_base", e.Message);
        Assert.Equal("cl100k_base", TextTokenizer.Create("CL100K").Name);
    }

    [Fact]
    public void The_converter_writes_documents_joined_by_end_of_text_and_splits_off_validation()
    {
        string a = Path.Combine(_dir, "a.txt"), b = Path.Combine(_dir, "b.txt");
        File.WriteAllText(a, "First document.\n\nWith two paragraphs.");
        File.WriteAllText(b, "Second one.");
        var t = Gpt2.Value;
        var expected = t.Encode(File.ReadAllText(a)).Append(50256).Concat(t.Encode(File.ReadAllText(b))).ToArray();
        string output = Path.Combine(_dir, "out.bin"), validation = Path.Combine(_dir, "out.val.bin");
        var r = TextToTokens.Convert(new[] { a, b }, output, t, 0.25, validation);
        Assert.Equal(expected.Length, r.TrainTokens + r.ValidationTokens);
        Assert.Equal((int)Math.Round(expected.Length * 0.25), r.ValidationTokens);
        using var train = TokenFile.Open(output);
        using var held = TokenFile.Open(validation);
        Assert.Equal(expected, train.ToArray().Concat(held.ToArray()));
        Assert.Throws<ArgumentException>(() => TextToTokens.Convert(new[] { b }, output, t, 0.5));
    }

    [Fact]
    public void The_converter_tool_runs_from_the_command_line()
    {
        string text = Path.Combine(_dir, "book.txt");
        File.WriteAllText(text, string.Concat(Enumerable.Repeat("To be, or not to be, that is the question.\n\n", 200)));
        string output = Path.Combine(_dir, "data", "book.bin");
        string configuration = typeof(TokenizerTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
        string tool = Path.Combine(Root(), "tools", "Kiln.Tokenize", "bin", configuration, "net10.0", "Kiln.Tokenize.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { tool, text, "-o", output, "--tokenizer", "gpt2", "--val", "0.1" }) psi.ArgumentList.Add(arg);
        using var p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd(), stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, stdout + stderr);
        Assert.Contains("with gpt2", stdout);
        using var train = TokenFile.Open(output);
        using var held = TokenFile.Open(Path.Combine(_dir, "data", "book.val.bin"));
        Assert.Equal(Gpt2.Value.Encode(File.ReadAllText(text)), train.ToArray().Concat(held.ToArray()));

        psi.ArgumentList.Clear();
        foreach (var arg in new[] { tool, text, "-o", output, "--tokenizer", "nope" }) psi.ArgumentList.Add(arg);
        using var bad = Process.Start(psi)!;
        string error = bad.StandardError.ReadToEnd();
        bad.WaitForExit();
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("Unknown tokenizer 'nope'", error);
    }

    private static string Root()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Compiler.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("the repository root is not above the test assembly");
    }
}
