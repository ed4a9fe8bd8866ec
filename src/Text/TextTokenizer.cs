using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace Kiln.Text;

/// <summary>
/// Turns text into token ids and back. <see cref="Create"/> gives the byte-level tokenizer (no files needed) or a
/// tiktoken encoding — GPT-2's (r50k_base), cl100k_base (GPT-4) or o200k_base (GPT-4o) — whose data ships in the
/// Microsoft.ML.Tokenizers.Data packages, so nothing is downloaded. Create one per process and reuse it: loading an
/// encoding parses its whole vocabulary.
/// </summary>
public abstract class TextTokenizer
{
    /// <summary>The names <see cref="Create"/> takes.</summary>
    public static IReadOnlyList<string> Names { get; } = new[] { "bytes", "gpt2", "r50k_base", "cl100k_base", "o200k_base" };

    /// <summary>The tokenizer's name (one of <see cref="Names"/>).</summary>
    public abstract string Name { get; }

    /// <summary>Ids are below this (the size of a model's embedding table and output layer).</summary>
    public abstract int VocabularySize { get; }

    /// <summary>The id that separates documents (<c>&lt;|endoftext|&gt;</c>), or null when the tokenizer has none.</summary>
    public abstract int? EndOfText { get; }

    /// <summary>The ids of <paramref name="text"/>.</summary>
    public abstract int[] Encode(string text);

    /// <summary>The text of <paramref name="tokens"/>; bytes that do not form valid UTF-8 become U+FFFD.</summary>
    public abstract string Decode(ReadOnlySpan<int> tokens);

    /// <summary>The tokenizer called <paramref name="name"/> (case-insensitive; <c>r50k</c>, <c>cl100k</c>, <c>o200k</c> and <c>byte</c> also work).</summary>
    /// <exception cref="ArgumentException">An unknown name (the message lists the known ones).</exception>
    public static TextTokenizer Create(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return name.Trim().ToLowerInvariant() switch
        {
            "bytes" or "byte" => new ByteTokenizer(),
            "gpt2" or "gpt-2" => new Tiktoken("gpt2", TiktokenTokenizer.CreateForModel("gpt2")),
            "r50k_base" or "r50k" => new Tiktoken("r50k_base", TiktokenTokenizer.CreateForEncoding("r50k_base")),
            "cl100k_base" or "cl100k" => new Tiktoken("cl100k_base", TiktokenTokenizer.CreateForEncoding("cl100k_base")),
            "o200k_base" or "o200k" => new Tiktoken("o200k_base", TiktokenTokenizer.CreateForEncoding("o200k_base")),
            _ => throw new ArgumentException($"Unknown tokenizer '{name}'; use one of: {string.Join(", ", Names)}.", nameof(name)),
        };
    }

    /// <summary>A tiktoken encoding from Microsoft.ML.Tokenizers.</summary>
    private sealed class Tiktoken : TextTokenizer
    {
        private readonly TiktokenTokenizer _tokenizer;

        public Tiktoken(string name, TiktokenTokenizer tokenizer)
        {
            Name = name;
            _tokenizer = tokenizer;
            var specials = tokenizer.SpecialTokens ?? new Dictionary<string, int>();
            EndOfText = specials.TryGetValue("<|endoftext|>", out int eot) ? eot : null;
            // The special tokens follow the byte-pair vocabulary, so the largest of them bounds every id.
            VocabularySize = specials.Count > 0 ? specials.Values.Max() + 1 : throw new InvalidOperationException($"{name} has no special tokens to bound its vocabulary.");
        }

        public override string Name { get; }
        public override int VocabularySize { get; }
        public override int? EndOfText { get; }

        public override int[] Encode(string text) => _tokenizer.EncodeToIds(text ?? throw new ArgumentNullException(nameof(text))).ToArray();

        public override string Decode(ReadOnlySpan<int> tokens)
        {
            foreach (var t in tokens)
                if ((uint)t >= (uint)VocabularySize) throw new ArgumentOutOfRangeException(nameof(tokens), t, $"Token {t} is outside {Name}'s vocabulary of {VocabularySize}.");
            return _tokenizer.Decode(tokens.ToArray()) ?? "";
        }
    }
}

/// <summary>One token per UTF-8 byte: 256 ids, no vocabulary files, any text (and any language) encodes.</summary>
public sealed class ByteTokenizer : TextTokenizer
{
    /// <inheritdoc/>
    public override string Name => "bytes";

    /// <inheritdoc/>
    public override int VocabularySize => 256;

    /// <inheritdoc/>
    public override int? EndOfText => null;

    /// <inheritdoc/>
    public override int[] Encode(string text) => Array.ConvertAll(Encoding.UTF8.GetBytes(text ?? throw new ArgumentNullException(nameof(text))), b => (int)b);

    /// <inheritdoc/>
    public override string Decode(ReadOnlySpan<int> tokens)
    {
        var bytes = new byte[tokens.Length];
        for (int i = 0; i < tokens.Length; i++)
            bytes[i] = (uint)tokens[i] < 256 ? (byte)tokens[i] : throw new ArgumentOutOfRangeException(nameof(tokens), tokens[i], $"Token {tokens[i]} is not a byte (0–255).");
        return Encoding.UTF8.GetString(bytes);
    }
}
