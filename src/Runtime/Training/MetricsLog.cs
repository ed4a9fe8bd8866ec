using System;
using System.IO;
using System.Text.Json;

namespace Kiln.Runtime;

/// <summary>
/// The JSON Lines metrics file: one object per line, flushed as it is written so a crash or a
/// <c>tail -f</c> sees every finished step. JSON has no NaN or infinity, so non-finite values are
/// written as <c>null</c>.
/// </summary>
internal sealed class MetricsLog : IDisposable
{
    private readonly FileStream _stream;
    private readonly Utf8JsonWriter _writer;

    private MetricsLog(FileStream stream)
    {
        _stream = stream;
        _writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = false });
    }

    /// <summary>Creates (or truncates) the file at <paramref name="path"/>, creating its directory; <paramref name="append"/> adds to it instead (a continued run).</summary>
    public static MetricsLog Create(string path, bool append = false)
    {
        try
        {
            string full = Path.GetFullPath(path);
            if (Path.GetDirectoryName(full) is { Length: > 0 } dir) Directory.CreateDirectory(dir);
            return new MetricsLog(new FileStream(full, append ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.Read));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            throw new IOException($"Cannot open the metrics log '{path}' (TrainOptions.MetricsLog): {e.Message}", e);
        }
    }

    /// <summary>Writes <c>{step, loss, lr, grad_norm, examples_per_s, skipped}</c>.</summary>
    public void Step(long step, double loss, float learningRate, double gradNorm, double examplesPerSecond, bool skipped)
    {
        _writer.WriteStartObject();
        _writer.WriteNumber("step", step);
        Number("loss", loss);
        if (float.IsFinite(learningRate)) _writer.WriteNumber("lr", learningRate); else _writer.WriteNull("lr");
        Number("grad_norm", gradNorm);
        Number("examples_per_s", Math.Round(examplesPerSecond, 2));
        _writer.WriteBoolean("skipped", skipped);
        EndLine();
    }

    /// <summary>Writes <c>{step, eval_loss}</c>.</summary>
    public void Eval(long step, double evalLoss)
    {
        _writer.WriteStartObject();
        _writer.WriteNumber("step", step);
        Number("eval_loss", evalLoss);
        EndLine();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _writer.Dispose();
        _stream.Dispose();
    }

    private void Number(string name, double value)
    {
        if (double.IsFinite(value)) _writer.WriteNumber(name, value);
        else _writer.WriteNull(name);
    }

    private void EndLine()
    {
        _writer.WriteEndObject();
        _writer.Flush();
        _stream.WriteByte((byte)'\n');
        _stream.Flush();
        _writer.Reset();
    }
}
