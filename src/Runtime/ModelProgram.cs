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
public sealed record ParameterInfo(string Name, int[] Shape, long Offset, long Length, InitKind Init, float InitScale, bool WeightDecay)
{
    /// <summary>How the parameter is split over tensor-parallel ranks (null: replicated): see <see cref="ParameterSplit"/>.</summary>
    public ParameterSplit? Split { get; init; }

    /// <summary>A parameter of the repeated blocks a pipeline splits into stages (stacked over the layers; each stage holds its own).</summary>
    public bool Staged { get; init; }
}

/// <summary>
/// A parameter split over the tensor-parallel ranks along axis <paramref name="Axis"/> (counted from the end: −1 is
/// the last), in <paramref name="Groups"/> equal groups that are each split evenly (a fused Q/K/V weight has three):
/// rank r of t holds, of every group, the r-th of its t equal pieces. Megatron's column-parallel Linear splits its
/// weight [out, in] on axis −2 and its bias on −1; a row-parallel Linear splits its weight on −1 and keeps the bias whole.
/// </summary>
public sealed record ParameterSplit(int Axis, int Groups);

/// <summary>One input of a program entry point.</summary>
/// <param name="Name">The C# parameter name.</param>
/// <param name="Type">Element type.</param>
/// <param name="Dims">Declared dimensions: symbols (<c>B</c>, a hyperparameter) or integer literals.</param>
public sealed record InputInfo(string Name, ElementType Type, string[] Dims);

/// <summary>One program of a compiled model: its name, the <see cref="ModelProgram"/> member that runs it and its inputs.</summary>
/// <param name="Name"><c>train</c>, <c>eval</c> or <c>predict</c> (later kinds of program join the list).</param>
/// <param name="EntryPoint">The member that runs it (<c>TrainStep</c>, <c>EvalLoss</c>, <c>Forward</c>).</param>
/// <param name="Inputs">Its inputs, in declaration order.</param>
public sealed record ProgramInfo(string Name, string EntryPoint, IReadOnlyList<InputInfo> Inputs);

/// <summary>Per-call facts a step needs besides its inputs: the randomness key and whether it trains.</summary>
/// <param name="Seed">Run seed.</param>
/// <param name="Step">Optimizer step (keys dropout masks so resume reproduces them).</param>
/// <param name="MicroStep">Index of the micro-batch inside a gradient-accumulation group.</param>
/// <param name="LossScale">The seed of the backward pass: the fp16 loss scale (1 without loss scaling; 0 also means 1).</param>
public readonly record struct StepContext(ulong Seed, long Step, int MicroStep, float LossScale = 1f)
{
    /// <summary><see cref="LossScale"/>, with the default value 0 read as 1.</summary>
    public float LossScaleOrOne => LossScale == 0f ? 1f : LossScale;
}


/// <summary>
/// A model compiled by the Kiln generator: the parameter table and slabs, and the entry points of the
/// generated step program. The generator emits one CPU subclass per <c>[Model]</c> (and a CUDA one, see
/// <c>Cuda.CudaModelProgram</c>). The trainer drives a program only through the members here, so the
/// gradient norm, scaling and the optimizer update run where the program's data lives.
/// </summary>
public abstract partial class ModelProgram
{
    private float[]? _lowParams;
    private bool _lowParamsStale = true;

    /// <summary>Creates the slabs for the parameter table computed by the generated subclass.</summary>
    protected ModelProgram(IReadOnlyList<ParameterInfo> parameters, long parameterCount, PrecisionMode precision = PrecisionMode.Float32)
    {
        if (precision == PrecisionMode.Auto) precision = PrecisionMode.Float32;
        if (!Enum.IsDefined(precision)) throw new ArgumentOutOfRangeException(nameof(precision), precision, "Unknown precision.");
        Parameters = parameters;
        Params = new float[parameterCount];
        Grads = new float[parameterCount];
        Precision = precision;
    }

    /// <summary>The model's class name.</summary>
    public abstract string ModelName { get; }

    /// <summary>Where the program runs: <c>cpu</c> or a GPU's description.</summary>
    public virtual string Device => "cpu";

    /// <summary>
    /// How low-precision tensors are stored (never <see cref="PrecisionMode.Auto"/>). On the CPU, bf16 and fp16
    /// are emulated: values stay in float arrays but are rounded wherever a GPU would store them in 16 bits.
    /// </summary>
    public PrecisionMode Precision { get; }

    /// <summary>
    /// When on, the low-precision copy of the parameters is rounded stochastically (keyed by seed, step and
    /// element, identical on every device) instead of to nearest; the fp32 master weights are unaffected.
    /// </summary>
    public bool StochasticRounding { get; set; }

    /// <summary>The seed and step that key stochastic rounding of the parameter copy (set by the trainer).</summary>
    public (ulong Seed, long Step) RoundingKey { get; set; }

    /// <summary>The parameter table, in slab order.</summary>
    public IReadOnlyList<ParameterInfo> Parameters { get; }

    /// <summary>
    /// All parameters, one slab (fp32 master weights). For a device program this is a host mirror: call
    /// <see cref="SyncParametersToHost"/> before reading it and <see cref="ParametersChanged"/> after writing it.
    /// </summary>
    public float[] Params { get; }

    /// <summary>Gradients, laid out like <see cref="Params"/>; <see cref="TrainStep"/> adds into it (a host mirror for a device program).</summary>
    public float[] Grads { get; }

    /// <summary>
    /// The parameters as matmuls read them: <see cref="Params"/> itself in fp32, otherwise a copy rounded to the
    /// low-precision type, refreshed by <see cref="ParametersChanged"/> (the optimizer calls it after every update).
    /// </summary>
    protected float[] LowParams
    {
        get
        {
            if (Precision == PrecisionMode.Float32) return Params;
            _lowParams ??= new float[Params.Length];
            if (_lowParamsStale) RefreshLowParams();
            return _lowParams;
        }
    }

    /// <summary>What generated CPU kernels pass to the rounding helpers: 0 none, 1 bf16, 2 fp16.</summary>
    protected int LowRounding => Precision switch { PrecisionMode.BFloat16 => 1, PrecisionMode.Float16 => 2, _ => 0 };

    /// <summary>The programs the generator compiled for this model, in order (each with its entry point and inputs).</summary>
    public abstract IReadOnlyList<ProgramInfo> Programs { get; }

    /// <summary>The inputs of the loss method, in declaration order.</summary>
    public abstract IReadOnlyList<InputInfo> LossInputs { get; }

    /// <summary>The inputs of <c>Forward</c>, in declaration order.</summary>
    public abstract IReadOnlyList<InputInfo> ForwardInputs { get; }

    /// <summary>The optimised IR of the training program (the text <c>KilnDumpIr</c> prints).</summary>
    public abstract string IrText { get; }

    /// <summary>The build report: parameters, kernels, the memory plan as formulas.</summary>
    public abstract string Report { get; }

    /// <summary>The parallel plan the build made (JSON; see the model's <c>KilnPlanReport</c> for the Markdown): per-rank memory, communication per step, FLOPs. Empty for programs built without one.</summary>
    public virtual string PlanJson => "";

    /// <summary>The model's [Parallel] declaration (<see cref="ParallelLayout.Single"/> without one).</summary>
    public virtual ParallelLayout Layout => ParallelLayout.Single;

    /// <summary>
    /// Forward and backward on one micro-batch: returns the loss and adds the gradients into <see cref="Grads"/>,
    /// multiplied by <see cref="StepContext.LossScale"/>.
    /// </summary>
    public abstract float TrainStep(Batch batch, StepContext context);

    /// <summary>The loss on one batch without gradients (dropout off).</summary>
    public abstract float EvalLoss(Batch batch);

    /// <summary>The output of <c>Forward</c> on one batch (dropout off).</summary>
    public abstract TensorData Forward(Batch batch);

    /// <summary>Bytes of activation arena the last call needed (the memory plan bound to its sizes).</summary>
    public abstract long ArenaBytes { get; }

    /// <summary>Sets the gradients to zero.</summary>
    public virtual void ZeroGrads() => Array.Clear(Grads);

    /// <summary>The global L2 norm of the gradients (NaN or ∞ when any is not finite).</summary>
    public virtual double GradientNorm() => _tensorGroup is { Size: > 1 }
        ? Math.Sqrt(TensorParallel.SquaredNorm(this, Grads, 0, Grads.Length)) // split parameters summed over the tensor ranks
        : GradientClipping.GlobalNorm(Grads);

    /// <summary>Multiplies every gradient by <paramref name="factor"/> (averaging, unscaling, clipping).</summary>
    public virtual void ScaleGradients(float factor) => GradientClipping.Scale(Grads, factor);

    /// <summary>Call after writing <see cref="Params"/> directly (the optimizer does): refreshes the low-precision copy (and, on a device, uploads).</summary>
    public virtual void ParametersChanged() => _lowParamsStale = true;

    /// <summary>Makes <see cref="Params"/> current (a device program downloads its parameters; the CPU has nothing to do).</summary>
    public virtual void SyncParametersToHost() { }

    /// <summary>Makes <see cref="Grads"/> current (a device program downloads its gradients; the CPU has nothing to do).</summary>
    public virtual void SyncGradientsToHost() { }

    /// <summary>A device program runs the optimizer update itself (see <see cref="DeviceOptimizerStep"/>).</summary>
    internal virtual bool UpdatesOnDevice => false;

    /// <summary>Copies the device's optimizer state (by slab name) into <paramref name="into"/>, each slab as long as the parameters.</summary>
    internal virtual void ReadOptimizerState(Optimizer optimizer, IReadOnlyDictionary<string, float[]> into) =>
        throw new NotSupportedException($"{ModelName} runs on the CPU; its optimizer state is the optimizer's own arrays.");

    /// <summary>Replaces the device's optimizer state with <paramref name="state"/> (by slab name).</summary>
    internal virtual void WriteOptimizerState(Optimizer optimizer, IReadOnlyDictionary<string, float[]> state) =>
        throw new NotSupportedException($"{ModelName} runs on the CPU; its optimizer state is the optimizer's own arrays.");

    /// <summary>Applies <paramref name="optimizer"/>'s update on the device; <see cref="Optimizer.StepCount"/> is already incremented.</summary>
    internal virtual void DeviceOptimizerStep(Optimizer optimizer, float learningRate) =>
        throw new NotSupportedException($"{ModelName} runs on the CPU; the optimizer updates its arrays directly.");

    /// <summary>Fills the parameters by their init rules from the counter-based RNG keyed by <paramref name="seed"/>.</summary>
    public void InitParameters(ulong seed)
    {
        for (int i = 0; i < Parameters.Count; i++)
        {
            var p = Parameters[i];
            ParameterInit.Fill(Params.AsSpan((int)p.Offset, (int)p.Length), p.Init, p.InitScale, seed, (ulong)i);
        }
        ParametersChanged();
    }

    private void RefreshLowParams()
    {
        var low = _lowParams!;
        if (StochasticRounding)
        {
            ulong stream = RandomStreams.StochasticRounding(RoundingKey.Step);
            if (Precision == PrecisionMode.BFloat16) global::Kiln.Runtime.Precision.Bf16.RoundStochastic(Params, low, RoundingKey.Seed, stream);
            else global::Kiln.Runtime.Precision.Fp16.RoundStochastic(Params, low, RoundingKey.Seed, stream);
        }
        else if (Precision == PrecisionMode.BFloat16) global::Kiln.Runtime.Precision.Bf16.Round(Params, low);
        else global::Kiln.Runtime.Precision.Fp16.Round(Params, low);
        _lowParamsStale = false;
    }
}
