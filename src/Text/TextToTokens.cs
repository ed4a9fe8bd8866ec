using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Text;

namespace Kiln.Text;

/// <summary>How a conversion went: what was read and written.</summary>
/// <param name="Files">Text files read.</param>
/// <param name="Characters">Characters read.</param>
/// <param name="TrainTokens">Tokens in the training file.</param>
/// <param name="ValidationTokens">Tokens in the validation file (0 when none was asked for).</param>
/// <param name="Seconds">Wall time.</param>
public sealed record TokenizeResult(int Files, long Characters, long TrainTokens, long ValidationTokens, double Seconds);

/// <summary>
/// Converts text files into token files (<see cref="TokenFile"/>, llm.c's layout) that <see cref="TokenWindows"/> trains
/// on: each file is a document, documents are joined with the tokenizer's end-of-text token when it has one, and the
/// last <c>validationFraction</c> of the tokens can go to a second file for evaluation.
/// </summary>
public static class TextToTokens
{
    /// <summary>Files above this size are tokenized in pieces cut at blank lines, so memory stays bounded.</summary>
    public const int PieceCharacters = 8 << 20;

    /// <summary>Tokenizes <paramref name="inputs"/> into <paramref name="output"/> (and <paramref name="validationOutput"/>).</summary>
    /// <exception cref="ArgumentException">No inputs, a fraction outside [0, 1), or a validation fraction without a validation path.</exception>
    public static TokenizeResult Convert(IReadOnlyList<string> inputs, string output, TextTokenizer tokenizer, double validationFraction = 0, string? validationOutput = null)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (inputs.Count == 0) throw new ArgumentException("Give at least one text file to tokenize.", nameof(inputs));
        if (!(validationFraction >= 0 && validationFraction < 1)) throw new ArgumentException($"The validation fraction must be in [0, 1) (got {validationFraction}).", nameof(validationFraction));
        if (validationFraction > 0 && validationOutput is null) throw new ArgumentException("A validation fraction needs a path for the validation file.", nameof(validationOutput));
        var clock = Stopwatch.StartNew();
        var tokens = new List<int>();
        long characters = 0;
        foreach (var path in inputs)
        {
            if (tokens.Count > 0 && tokenizer.EndOfText is int eot) tokens.Add(eot);
            foreach (var piece in Pieces(path))
            {
                characters += piece.Length;
                tokens.AddRange(tokenizer.Encode(piece));
            }
        }
        var all = tokens.ToArray();
        int validation = (int)Math.Round(all.Length * validationFraction);
        if (validationFraction > 0 && (validation == 0 || validation == all.Length))
            throw new ArgumentException($"{all.Length} tokens cannot be split {1 - validationFraction:P0}/{validationFraction:P0}; use more text or another fraction.", nameof(validationFraction));
        TokenFile.Write(output, all.AsSpan(0, all.Length - validation));
        if (validation > 0) TokenFile.Write(validationOutput!, all.AsSpan(all.Length - validation));
        return new TokenizeResult(inputs.Count, characters, all.Length - validation, validation, clock.Elapsed.TotalSeconds);
    }

    /// <summary>The text of <paramref name="path"/>: whole, or in pieces of about <see cref="PieceCharacters"/> ending at a blank line.</summary>
    private static IEnumerable<string> Pieces(string path)
    {
        using var reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        var buffer = new char[PieceCharacters];
        var carry = new StringBuilder();
        while (true)
        {
            int n = reader.ReadBlock(buffer, 0, buffer.Length);
            if (n == 0) break;
            carry.Append(buffer, 0, n);
            if (n < buffer.Length) break;
            string text = carry.ToString();
            int cut = text.LastIndexOf("\n\n", StringComparison.Ordinal);
            if (cut <= 0) continue; // no blank line yet: keep reading
            yield return text[..(cut + 2)];
            carry.Clear().Append(text, cut + 2, text.Length - cut - 2);
        }
        if (carry.Length > 0) yield return carry.ToString();
    }
}
