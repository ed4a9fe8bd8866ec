using System;
using System.Collections.Generic;

namespace Kiln.Runtime;

/// <summary>How a parameter tensor is initialised.</summary>
public enum InitKind
{
    /// <summary>All zeros.</summary>
    Zeros,
    /// <summary>All ones.</summary>
    Ones,
    /// <summary>Uniform in [−Scale, Scale).</summary>
    Uniform,
    /// <summary>Normal with mean 0 and standard deviation Scale.</summary>
    Normal,
}

/// <summary>One parameter tensor of a compiled model: where it lives in the parameter slab and how it starts.</summary>
/// <param name="Name">Dotted path, e.g. <c>h.3.fc.weight</c>.</param>
/// <param name="Shape">Concrete dimensions for the bound hyperparameters.</param>
/// <param name="Offset">Element offset into <see cref="ModelProgram.Params"/> (and <see cref="ModelProgram.Grads"/>).</param>
/// <param name="Length">Number of elements.</param>
/// <param name="Init">Initialisation rule.</param>
/// <param name="InitScale">Bound (uniform) or standard deviation (normal).</param>
/// <param name="WeightDecay">Whether decoupled weight decay applies (matrices yes; biases and norm parameters no).</param>
public sealed record ParameterInfo(string Name, int[] Shape, long Offset, long Length, InitKind Init, float InitScale, bool WeightDecay);

/// <summary>One input of a program entry point.</summary>
/// <param name="Name">The C# parameter name.</param>
/// <param name="Type">Element type.</param>
/// <param name="Dims">Declared dimensions: symbols (<c>B</c>, a hyperparameter) or integer literals.</param>
public sealed record InputInfo(string Name, ElementType Type, string[] Dims);

/// <summary>Per-call facts a step needs besides its inputs: the randomness key and whether it trains.</summary>
/// <param name="Seed">Run seed.</param>
/// <param name="Step">Optimizer step (keys dropout masks so resume reproduces them).</param>
/// <param name="MicroStep">Index of the micro-batch inside a gradient-accumulation group.</param>
public readonly record struct StepContext(ulong Seed, long Step, int MicroStep);

/// <summary>
/// A model compiled by the Kiln generator for the CPU: the parameter table and slabs, and the entry
/// points of the generated step program. The generator emits one subclass per <c>[Model]</c>.
/// </summary>
public abstract class ModelProgram
{
    /// <summary>Creates the slabs for the parameter table computed by the generated subclass.</summary>
    protected ModelProgram(IReadOnlyList<ParameterInfo> parameters, long parameterCount)
    {
        Parameters = parameters;
        Params = new float[parameterCount];
        Grads = new float[parameterCount];
    }

    /// <summary>The model's class name.</summary>
    public abstract string ModelName { get; }

    /// <summary>The parameter table, in slab order.</summary>
    public IReadOnlyList<ParameterInfo> Parameters { get; }

    /// <summary>All parameters, one slab (fp32 master weights).</summary>
    public float[] Params { get; }

    /// <summary>Gradients, laid out like <see cref="Params"/>; <see cref="TrainStep"/> adds into it.</summary>
    public float[] Grads { get; }

    /// <summary>The inputs of the loss method, in declaration order.</summary>
    public abstract IReadOnlyList<InputInfo> LossInputs { get; }

    /// <summary>The inputs of <c>Forward</c>, in declaration order.</summary>
    public abstract IReadOnlyList<InputInfo> ForwardInputs { get; }

    /// <summary>The optimised IR of the training program (the text <c>KilnDumpIr</c> prints).</summary>
    public abstract string IrText { get; }

    /// <summary>The build report: parameters, kernels, the memory plan as formulas.</summary>
    public abstract string Report { get; }

    /// <summary>Forward and backward on one micro-batch: returns the loss and adds the gradients into <see cref="Grads"/>.</summary>
    public abstract float TrainStep(Batch batch, StepContext context);

    /// <summary>The loss on one batch without gradients (dropout off).</summary>
    public abstract float EvalLoss(Batch batch);

    /// <summary>The output of <c>Forward</c> on one batch (dropout off).</summary>
    public abstract TensorData Forward(Batch batch);

    /// <summary>Bytes of activation arena the last call needed (the memory plan bound to its sizes).</summary>
    public abstract long ArenaBytes { get; }

    /// <summary>Sets <see cref="Grads"/> to zero.</summary>
    public void ZeroGrads() => Array.Clear(Grads);

    /// <summary>Fills the parameters by their init rules from the counter-based RNG keyed by <paramref name="seed"/>.</summary>
    public void InitParameters(ulong seed)
    {
        for (int i = 0; i < Parameters.Count; i++)
        {
            var p = Parameters[i];
            ParameterInit.Fill(Params.AsSpan((int)p.Offset, (int)p.Length), p.Init, p.InitScale, seed, (ulong)i);
        }
    }
}
