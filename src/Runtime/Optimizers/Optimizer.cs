using System;
using System.Linq;
using System.Collections.Generic;

namespace Kiln.Runtime;

/// <summary>
/// Updates <see cref="ModelProgram.Params"/> from <see cref="ModelProgram.Grads"/> once per step.
/// The gradients are taken as final: the trainer has already averaged them over the accumulation
/// group and clipped them. State (moments, momentum) lives in slabs laid out like the parameters.
/// </summary>
public abstract class Optimizer
{
    private readonly Dictionary<string, float[]> _state = new(StringComparer.Ordinal);
    /// <summary>The device program whose update keeps this optimizer's live state (null: the state is the host slabs).</summary>
    private ModelProgram? _device;
    /// <summary>State loaded (or edited) on the host that the device has not received yet.</summary>
    private bool _hostAhead;
    private ModelProgram? _rangesFor;
    private ParameterRange[] _ranges = Array.Empty<ParameterRange>();

    /// <summary>Creates an optimizer whose state slabs are named <paramref name="stateNames"/>.</summary>
    protected Optimizer(params string[] stateNames)
    {
        ArgumentNullException.ThrowIfNull(stateNames);
        StateNames = stateNames;
    }

    /// <summary>The names of the state slabs (for example <c>m</c> and <c>v</c> for AdamW), fixed per optimizer type.</summary>
    public IReadOnlyList<string> StateNames { get; }

    /// <summary>
    /// The state slabs by name, each as long as the parameter slab; empty until the first
    /// <see cref="Step"/> or <see cref="LoadState"/>. On the CPU the arrays are live; when the update runs on a device
    /// (a CUDA program), reading this downloads the device's state into them first, so a checkpoint reads the same
    /// thing on every device.
    /// </summary>
    public IReadOnlyDictionary<string, float[]> State
    {
        get
        {
            if (_device is not null && !_hostAhead)
            {
                EnsureState(_device.Params.Length);
                _device.ReadOptimizerState(this, _state);
            }
            return _state;
        }
    }

    /// <summary>The number of updates applied so far (bias corrections count from it).</summary>
    public long StepCount { get; private set; }

    /// <summary>Applies one update with learning rate <paramref name="learningRate"/> and increments <see cref="StepCount"/>.</summary>
    public void Step(ModelProgram program, float learningRate)
    {
        ArgumentNullException.ThrowIfNull(program);
        CheckLearningRate(learningRate);
        StepCount++;
        if (program.UpdatesOnDevice)
        {
            // State loaded on the host (a resumed checkpoint) goes to the device before the update that uses it.
            if (_hostAhead || (_state.Count > 0 && !ReferenceEquals(_device, program)))
            {
                EnsureState(program.Params.Length);
                program.WriteOptimizerState(this, _state);
            }
            program.DeviceOptimizerStep(this, learningRate);
            _device = program;
            _hostAhead = false;
            return;
        }
        if (_device is not null)
        {
            // Moving from a device program to the CPU: continue from the device's state.
            EnsureState(_device.Params.Length);
            if (!_hostAhead) _device.ReadOptimizerState(this, _state);
            _device = null;
        }
        EnsureState(program.Params.Length);
        Update(program, Ranges(program), learningRate);
        program.ParametersChanged();
    }

    /// <summary>
    /// Applies one update to the parameters in [<paramref name="start"/>, <paramref name="start"/> + <paramref name="length"/>)
    /// only, keeping optimizer state for that shard alone (ZeRO: each data-parallel rank owns one shard of the state).
    /// The first call fixes the shard; the state slabs are <paramref name="length"/> long. CPU programs only.
    /// </summary>
    public void StepShard(ModelProgram program, float learningRate, int start, int length)
    {
        ArgumentNullException.ThrowIfNull(program);
        if (program.UpdatesOnDevice) throw new NotSupportedException($"{program.ModelName}: sharded optimizer state (ZeRO) is built for CPU programs only.");
        CheckLearningRate(learningRate);
        if (start < 0 || length < 0 || start + length > program.Params.Length)
            throw new ArgumentOutOfRangeException(nameof(start), $"The shard [{start}, {start + length}) is outside the {program.Params.Length} parameters.");
        if (_state.Count > 0 && (_stateBase != start || _state.Values.First().Length != length))
            throw new InvalidOperationException($"{GetType().Name} holds state for the shard [{_stateBase}, {_stateBase + _state.Values.First().Length}), not [{start}, {start + length}); use one optimizer per shard.");
        StepCount++;
        _stateBase = start;
        if (_state.Count == 0) foreach (var name in StateNames) _state[name] = new float[length];
        var shard = new List<ParameterRange>();
        foreach (var r in Ranges(program))
        {
            int lo = Math.Max(r.Offset, start), hi = Math.Min(r.Offset + r.Length, start + length);
            if (hi > lo) shard.Add(new ParameterRange(lo, hi - lo, r.Decay));
        }
        Update(program, shard.ToArray(), learningRate);
        program.ParametersChanged();
    }

    private int _stateBase;

    private static void CheckLearningRate(float learningRate)
    {
        if (!float.IsFinite(learningRate) || learningRate < 0)
            throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "The learning rate must be finite and non-negative.");
    }

    /// <summary>The first parameter the state slabs cover: 0, or the shard's start under ZeRO (<see cref="StepShard"/>).</summary>
    public int StateStart => _stateBase;

    /// <summary>
    /// Replaces the state with the slabs of one shard, [<paramref name="start"/>, start + slab length) of the parameters,
    /// and the step count (a sharded checkpoint read back under any world size).
    /// </summary>
    public void LoadShardState(long stepCount, IReadOnlyDictionary<string, float[]> state, int start)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        LoadState(stepCount, state);
        _stateBase = start;
    }

    /// <summary>Where the state slabs start in the parameter slab: 0, or the shard's first parameter (see <see cref="StepShard"/>).</summary>
    protected int StateBase => _stateBase;

    /// <summary>
    /// Replaces the state with a checkpoint's: the step count and one slab per name in
    /// <see cref="StateNames"/>, all of one length (the parameter count). The slabs are copied.
    /// </summary>
    public void LoadState(long stepCount, IReadOnlyDictionary<string, float[]> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (stepCount < 0) throw new ArgumentOutOfRangeException(nameof(stepCount), stepCount, "A step count is non-negative.");
        int length = -1;
        foreach (var name in StateNames)
        {
            if (!state.TryGetValue(name, out var slab) || slab is null)
                throw new ArgumentException($"{GetType().Name} state needs a slab named '{name}'; the checkpoint has: {string.Join(", ", state.Keys)}.", nameof(state));
            if (length >= 0 && slab.Length != length)
                throw new ArgumentException($"{GetType().Name} state slabs differ in length ({length} and {slab.Length} for '{name}'); each must hold one value per parameter.", nameof(state));
            length = slab.Length;
        }
        _state.Clear();
        foreach (var name in StateNames) _state[name] = (float[])state[name].Clone();
        StepCount = stepCount;
        _hostAhead = true;
    }

    /// <summary>Applies the update over <paramref name="ranges"/> (which cover the parameter table) with <see cref="StepCount"/> already incremented.</summary>
    protected abstract void Update(ModelProgram program, ReadOnlySpan<ParameterRange> ranges, float learningRate);

    /// <summary>The state slab named <paramref name="name"/> (allocated before <see cref="Update"/> runs).</summary>
    protected float[] Slab(string name) => _state[name];

    private void EnsureState(int parameterCount)
    {
        if (_state.Count == 0)
        {
            foreach (var name in StateNames) _state[name] = new float[parameterCount];
            return;
        }
        foreach (var (name, slab) in _state)
            if (slab.Length != parameterCount)
                throw new InvalidOperationException(
                    $"{GetType().Name} state slab '{name}' holds {slab.Length} values but the program has {parameterCount} parameters; " +
                    "use one optimizer per program, or load state saved from this model.");
    }

    /// <summary>
    /// The parameter table as maximal contiguous runs sharing one weight-decay flag, so the vector
    /// loops run over long spans; cached per program.
    /// </summary>
    private ReadOnlySpan<ParameterRange> Ranges(ModelProgram program)
    {
        if (ReferenceEquals(_rangesFor, program)) return _ranges;
        var sorted = new List<ParameterInfo>(program.Parameters);
        sorted.Sort((a, b) => a.Offset.CompareTo(b.Offset));
        var runs = new List<ParameterRange>();
        foreach (var p in sorted)
        {
            if (p.Offset < 0 || p.Length < 0 || p.Offset + p.Length > program.Params.Length)
                throw new InvalidOperationException($"Parameter '{p.Name}' spans [{p.Offset}, {p.Offset + p.Length}) outside the slab of {program.Params.Length} values.");
            if (p.Length == 0) continue;
            if (runs.Count > 0 && p.Offset < runs[^1].Offset + runs[^1].Length)
                throw new InvalidOperationException($"Parameter '{p.Name}' at offset {p.Offset} overlaps the parameter before it; a shared tensor must appear once in the table or it would be updated twice.");
            if (runs.Count > 0 && runs[^1] is var last && last.Decay == p.WeightDecay && last.Offset + last.Length == p.Offset)
                runs[^1] = last with { Length = last.Length + (int)p.Length };
            else
                runs.Add(new ParameterRange((int)p.Offset, (int)p.Length, p.WeightDecay));
        }
        _ranges = runs.ToArray();
        _rangesFor = program;
        return _ranges;
    }
}

/// <summary>A contiguous run of the parameter slab that shares one weight-decay flag.</summary>
/// <param name="Offset">First element.</param>
/// <param name="Length">Number of elements.</param>
/// <param name="Decay">Whether weight decay applies to the run.</param>
public readonly record struct ParameterRange(int Offset, int Length, bool Decay);
