using System;
using System.Collections.Generic;
using System.Linq;

namespace Kiln.Runtime;

/// <summary>Where a parameter's values are in a file: the tensor's name there, and how it is laid out.</summary>
/// <param name="Name">The tensor in the file; with <paramref name="Layers"/>, a pattern whose <c>{layer}</c> is replaced by 0, 1, ….</param>
/// <param name="Transposed">The file holds the transpose of a rank-2 parameter (Hugging Face GPT-2's Conv1D weights, for example).</param>
/// <param name="Layers">The parameter is stacked over repeated blocks ([layers, …], a loop region's layout) and the file holds
/// one tensor per layer (0: not split).</param>
/// <param name="Rows">The file holds only the first <paramref name="Rows"/> rows of the parameter (a vocabulary padded to a
/// multiple of 64 in the model but not in the file): loading zeroes the rest, saving leaves them out (−1: all rows).</param>
public readonly record struct ParameterSource(string Name, bool Transposed = false, int Layers = 0, long Rows = -1);

public abstract partial class ModelProgram
{
    /// <summary>
    /// Writes the parameters (fp32, one tensor per parameter, named like the parameter table) as a safetensors file,
    /// atomically; <paramref name="metadata"/> goes into its <c>__metadata__</c>.
    /// </summary>
    public void SaveParameters(string path, IReadOnlyDictionary<string, string>? metadata = null, Func<ParameterInfo, ParameterSource>? layout = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        SyncParametersToHost();
        var writer = new SafeTensorsWriter();
        foreach (var p in Parameters)
            foreach (var piece in Pieces(p, layout?.Invoke(p) ?? new ParameterSource(p.Name)))
            {
                var values = Params.AsMemory((int)piece.Offset, (int)piece.FileLength);
                if (piece.Transposed) writer.Add(piece.Name, Transpose(values.Span, piece.Shape[0], piece.Shape[1]), piece.FileShape);
                else writer.Add(piece.Name, values, piece.FileShape);
            }
        if (metadata is not null)
            foreach (var (k, v) in metadata) writer.Metadata[k] = v;
        writer.Save(path);
    }

    /// <summary>
    /// Replaces the parameters with the tensors of a safetensors file: by name, or where <paramref name="layout"/> says
    /// (another name, stored transposed). Every parameter must be found with its shape; F32, F16, BF16 and F64 are read.
    /// Tensors of the file that no parameter uses are ignored (a checkpoint's optimizer state, a model's unused buffers).
    /// </summary>
    /// <exception cref="InvalidFileFormatException">The file breaks the safetensors format.</exception>
    /// <exception cref="InvalidOperationException">A parameter is missing or has another shape (all such are listed).</exception>
    public void LoadParameters(string path, Func<ParameterInfo, ParameterSource>? layout = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var file = SafeTensorsFile.Open(path);
        var problems = new List<string>();
        var plan = Parameters.Select(p => (Parameter: p, Pieces: Pieces(p, layout?.Invoke(p) ?? new ParameterSource(p.Name)))).ToList();
        foreach (var (p, pieces) in plan)
            foreach (var piece in pieces)
            {
                if (!file.Contains(piece.Name)) { problems.Add($"'{piece.Name}' (for {p.Name}) is missing"); continue; }
                var stored = file[piece.Name].Shape;
                if (!stored.SequenceEqual(piece.FileShape))
                    problems.Add($"'{piece.Name}' is [{string.Join(", ", stored)}] but {p.Name} needs [{string.Join(", ", piece.FileShape)}]");
            }
        if (problems.Count > 0)
            throw new InvalidOperationException($"{path} does not fit {ModelName}'s parameters: {string.Join("; ", problems.Take(8))}{(problems.Count > 8 ? $"; and {problems.Count - 8} more" : "")}.");
        foreach (var (p, pieces) in plan)
            foreach (var piece in pieces)
            {
                var target = Params.AsSpan((int)piece.Offset, (int)piece.Length);
                if (piece.Transposed)
                    Transpose(file.ReadFloats(piece.Name), piece.Shape[1], piece.Shape[0]).AsSpan().CopyTo(target);
                else
                {
                    file.ReadFloats(piece.Name, target[..(int)piece.FileLength]);
                    target[(int)piece.FileLength..].Clear(); // rows the file does not have (vocabulary padding)
                }
            }
        ParametersChanged();
    }

    /// <summary>One tensor of the file: its name, where it sits in the parameter slab, its shape there and in the file.</summary>
    private readonly record struct Piece(string Name, long Offset, long Length, int[] Shape, long[] FileShape, long FileLength, bool Transposed);

    /// <summary>The file tensors parameter <paramref name="p"/> maps to under <paramref name="s"/> (one, or one per layer).</summary>
    private static List<Piece> Pieces(ParameterInfo p, ParameterSource s)
    {
        int layers = s.Layers > 0 ? s.Layers : 1;
        if (s.Layers > 0 && (p.Shape.Length < 2 || p.Shape[0] != s.Layers))
            throw new InvalidOperationException($"{p.Name} has shape [{string.Join(", ", p.Shape)}], not [{s.Layers}, …]: it is not stacked over {s.Layers} layers (as '{s.Name}').");
        if (s.Layers > 0 && !s.Name.Contains("{layer}", StringComparison.Ordinal))
            throw new InvalidOperationException($"'{s.Name}' (for {p.Name}) has no {{layer}} placeholder to name each layer's tensor.");
        var shape = s.Layers > 0 ? p.Shape[1..] : p.Shape;
        long length = 1;
        foreach (var d in shape) length *= d;
        if (s.Transposed && shape.Length != 2)
            throw new InvalidOperationException($"{p.Name} has {(s.Layers > 0 ? "per-layer " : "")}shape [{string.Join(", ", shape)}]; only a matrix can be stored transposed (as '{s.Name}').");
        if (s.Rows >= 0 && (s.Transposed || shape.Length == 0 || s.Rows > shape[0]))
            throw new InvalidOperationException($"{p.Name} [{string.Join(", ", shape)}] cannot be stored as its first {s.Rows} rows{(s.Transposed ? " and transposed" : "")} (as '{s.Name}').");
        var fileShape = Array.ConvertAll(shape, d => (long)d);
        if (s.Transposed) fileShape = new[] { fileShape[1], fileShape[0] };
        long fileLength = length;
        if (s.Rows >= 0) { fileLength = length / shape[0] * s.Rows; fileShape[0] = s.Rows; }
        var pieces = new List<Piece>(layers);
        for (int l = 0; l < layers; l++)
        {
            var name = s.Layers > 0 ? s.Name.Replace("{layer}", l.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal) : s.Name;
            pieces.Add(new Piece(name, p.Offset + l * length, length, shape, fileShape, fileLength, s.Transposed));
        }
        return pieces;
    }

    private static float[] Transpose(ReadOnlySpan<float> values, int rows, int columns)
    {
        var t = new float[values.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < columns; c++) t[(long)c * rows + r] = values[r * columns + c];
        return t;
    }
}
