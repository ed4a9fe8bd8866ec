using System;
using System.Collections.Generic;
using System.Linq;

namespace Kiln.Runtime;

/// <summary>Where a parameter's values are in a file: the tensor's name there, and whether it is stored transposed.</summary>
/// <param name="Name">The tensor in the file.</param>
/// <param name="Transposed">The file holds the transpose of a rank-2 parameter (Hugging Face GPT-2's Conv1D weights, for example).</param>
public readonly record struct ParameterSource(string Name, bool Transposed = false);

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
        {
            var source = layout?.Invoke(p) ?? new ParameterSource(p.Name);
            var values = Params.AsMemory((int)p.Offset, (int)p.Length);
            if (source.Transposed)
            {
                RequireMatrix(p, source);
                writer.Add(source.Name, Transpose(values.Span, p.Shape[0], p.Shape[1]), p.Shape[1], p.Shape[0]);
            }
            else writer.Add(source.Name, values, Array.ConvertAll(p.Shape, d => (long)d));
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
        foreach (var p in Parameters)
        {
            var source = layout?.Invoke(p) ?? new ParameterSource(p.Name);
            if (!file.Contains(source.Name)) { problems.Add($"'{source.Name}' (for {p.Name}) is missing"); continue; }
            var stored = file[source.Name].Shape;
            var expected = source.Transposed && p.Shape.Length == 2 ? new long[] { p.Shape[1], p.Shape[0] } : Array.ConvertAll(p.Shape, d => (long)d);
            if (!stored.SequenceEqual(expected))
                problems.Add($"'{source.Name}' is [{string.Join(", ", stored)}] but {p.Name} needs [{string.Join(", ", expected)}]");
        }
        if (problems.Count > 0)
            throw new InvalidOperationException($"{path} does not fit {ModelName}'s parameters: {string.Join("; ", problems.Take(8))}{(problems.Count > 8 ? $"; and {problems.Count - 8} more" : "")}.");
        foreach (var p in Parameters)
        {
            var source = layout?.Invoke(p) ?? new ParameterSource(p.Name);
            var target = Params.AsSpan((int)p.Offset, (int)p.Length);
            if (source.Transposed)
            {
                RequireMatrix(p, source);
                var stored = file.ReadFloats(source.Name);
                Transpose(stored, p.Shape[1], p.Shape[0]).AsSpan().CopyTo(target);
            }
            else file.ReadFloats(source.Name, target);
        }
        ParametersChanged();
    }

    private static void RequireMatrix(ParameterInfo p, ParameterSource source)
    {
        if (p.Shape.Length != 2)
            throw new InvalidOperationException($"{p.Name} has shape [{string.Join(", ", p.Shape)}]; only a matrix can be stored transposed (as '{source.Name}').");
    }

    private static float[] Transpose(ReadOnlySpan<float> values, int rows, int columns)
    {
        var t = new float[values.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < columns; c++) t[(long)c * rows + r] = values[r * columns + c];
        return t;
    }
}
