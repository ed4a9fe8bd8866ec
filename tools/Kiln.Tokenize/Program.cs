using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using Kiln.Text;

// kiln-tokenize: text files → a token file (llm.c layout) for TokenWindows / TokenFile.
const string Usage = "usage: Kiln.Tokenize INPUT.txt [INPUT2.txt ...] -o OUTPUT.bin [--tokenizer bytes|gpt2|r50k_base|cl100k_base|o200k_base] [--val FRACTION]\n" +
                     "  Each input is a document; documents are joined with the tokenizer's end-of-text token. With --val, the last FRACTION\n" +
                     "  of the tokens goes to OUTPUT.val.bin (OUTPUT's name with .val before the extension).";
var inputs = new List<string>();
string? output = null, tokenizerName = "gpt2";
double validation = 0;
for (int i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.\n{Usage}");
    try
    {
        switch (args[i])
        {
            case "-o" or "--output": output = Next(); break;
            case "--tokenizer": tokenizerName = Next(); break;
            case "--val": validation = double.Parse(Next(), CultureInfo.InvariantCulture); break;
            case "-h" or "--help": Console.WriteLine(Usage); return 0;
            default:
                if (args[i].StartsWith('-')) throw new ArgumentException($"unknown option {args[i]}\n{Usage}");
                inputs.Add(args[i]);
                break;
        }
    }
    catch (Exception e) when (e is ArgumentException or FormatException)
    {
        Console.Error.WriteLine(e.Message);
        return 2;
    }
}
if (inputs.Count == 0 || output is null)
{
    Console.Error.WriteLine(Usage);
    return 2;
}
foreach (var input in inputs)
    if (!File.Exists(input)) { Console.Error.WriteLine($"{input}: no such file"); return 2; }
try
{
    var tokenizer = TextTokenizer.Create(tokenizerName!);
    string directory = Path.GetDirectoryName(Path.GetFullPath(output))!;
    Directory.CreateDirectory(directory);
    string? validationOutput = validation > 0 ? Path.Combine(directory, Path.GetFileNameWithoutExtension(output) + ".val" + Path.GetExtension(output)) : null;
    var r = TextToTokens.Convert(inputs, output, tokenizer, validation, validationOutput);
    long total = r.TrainTokens + r.ValidationTokens;
    Console.WriteLine($"{r.Files} file(s), {r.Characters:N0} characters → {total:N0} tokens ({(double)r.Characters / Math.Max(1, total):F2} characters/token) with {tokenizer.Name} (vocabulary {tokenizer.VocabularySize:N0}) in {r.Seconds:F1} s");
    Console.WriteLine($"wrote {output}: {r.TrainTokens:N0} tokens" + (validationOutput is null ? "" : $"; {validationOutput}: {r.ValidationTokens:N0} tokens"));
    return 0;
}
catch (Exception e) when (e is ArgumentException or IOException or UnauthorizedAccessException)
{
    Console.Error.WriteLine(e.Message);
    return 1;
}
