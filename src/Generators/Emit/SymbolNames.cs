using System.Collections.Generic;
using System.Globalization;
using Kiln.Generators.Ir;
using Kiln.Generators.Parsing;

namespace Kiln.Generators.Emit;

/// <summary>How symbols, scalars and buffers are spelled in the emitted C#.</summary>
internal sealed class SymbolNames
{
    private readonly HashSet<string> _intHypers = new();
    private readonly HashSet<string> _floatHypers = new();

    public SymbolNames(ModuleSpec root)
    {
        foreach (var h in root.Hypers)
            (h.Type is "float" or "double" ? _floatHypers : _intHypers).Add(h.Name);
    }

    /// <summary>The program is a pipeline stage: the loss-gradient seed is multiplied by the program's <c>PipelineLossFactor</c>.</summary>
    public bool PipelineStage { get; init; }

    public bool IsHyper(string name) => _intHypers.Contains(name) || _floatHypers.Contains(name);

    /// <summary>Integer symbols: hyperparameters are program fields, data sizes are locals bound from the inputs.</summary>
    public string Int(string name) => _intHypers.Contains(name) ? "_h_" + name : "s_" + name;

    public string Float(string name) => name == Passes.Autodiff.LossScaleSymbol ? (PipelineStage ? "(ctx.LossScaleOrOne * PipelineLossFactor)" : "ctx.LossScaleOrOne") : _floatHypers.Contains(name) ? "_f_" + name : Int(name);

    public string Sym(Sym s) => s.ToCSharp(Int);

    public string Scalar(Scalar s) => "(float)" + s.ToCSharp(Float);

    public static string Str(string s) => SymbolDisplay(s);

    private static string SymbolDisplay(string s)
    {
        var sb = new System.Text.StringBuilder("\"");
        foreach (var c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < ' ') sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        return sb.Append('"').ToString();
    }
}
