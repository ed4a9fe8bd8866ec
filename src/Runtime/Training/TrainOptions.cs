using System;

namespace Kiln;

/// <summary>The optimizer a <see cref="Trainer"/> uses.</summary>
public enum OptimizerKind
{
    /// <summary>Adam with decoupled weight decay (<see cref="Runtime.AdamW"/>).</summary>
    AdamW,
    /// <summary>SGD with momentum (<see cref="Runtime.Sgd"/>).</summary>
    Sgd,
}

/// <summary>The learning-rate schedule after warmup.</summary>
public enum ScheduleKind
{
    /// <summary>Half-cosine decay from <see cref="TrainOptions.LearningRate"/> to <see cref="TrainOptions.MinLearningRate"/> over the run.</summary>
    Cosine,
    /// <summary><see cref="TrainOptions.LearningRate"/> throughout.</summary>
    Constant,
}

/// <summary>How a <see cref="Trainer"/> shows progress.</summary>
public enum ProgressMode
{
    /// <summary>A live progress bar on an interactive console, plain lines otherwise (CI logs, redirected output).</summary>
    Auto,
    /// <summary>One line about every 5% of the steps.</summary>
    Plain,
    /// <summary>Nothing.</summary>
    None,
}

/// <summary>
/// Settings of a training run. Every option has a usable default; <see cref="Validate"/> (called by
/// the <see cref="Trainer"/>) reports a bad value by name with the fix.
/// </summary>
public sealed record TrainOptions
{
    /// <summary>
    /// The length of the run in optimizer steps: the schedule spans it, and <see cref="Trainer.Fit"/> trains from the
    /// trainer's current <see cref="Trainer.Step"/> (0, or where a loaded checkpoint left off) up to it.
    /// </summary>
    public long Steps { get; init; } = 1000;

    /// <summary>Examples per micro-batch (one forward/backward); a step sees <c>BatchSize × GradientAccumulation</c> examples.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Peak learning rate (reached at the end of warmup).</summary>
    public float LearningRate { get; init; } = 3e-3f;

    /// <summary>The floor the cosine schedule decays to.</summary>
    public float MinLearningRate { get; init; }

    /// <summary>Steps of linear warmup from 0 to <see cref="LearningRate"/>.</summary>
    public long WarmupSteps { get; init; }

    /// <summary>The schedule after warmup.</summary>
    public ScheduleKind Schedule { get; init; } = ScheduleKind.Cosine;

    /// <summary>The optimizer.</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.AdamW;

    /// <summary>AdamW first-moment decay.</summary>
    public float Beta1 { get; init; } = 0.9f;

    /// <summary>AdamW second-moment decay (PyTorch's default; GPT training often uses 0.95).</summary>
    public float Beta2 { get; init; } = 0.999f;

    /// <summary>AdamW epsilon.</summary>
    public float Eps { get; init; } = 1e-8f;

    /// <summary>
    /// Weight decay: decoupled for AdamW, an L2 term for SGD. Applies only to parameters the model marks
    /// for decay (matrices, not biases or norms).
    /// </summary>
    public float WeightDecay { get; init; } = 0.01f;

    /// <summary>SGD momentum.</summary>
    public float Momentum { get; init; } = 0.9f;

    /// <summary>SGD with Nesterov momentum.</summary>
    public bool Nesterov { get; init; }

    /// <summary>Maximum global L2 norm of the gradients; 0 turns clipping off.</summary>
    public float ClipGradNorm { get; init; } = 1.0f;

    /// <summary>Micro-batches whose gradients are averaged into one step.</summary>
    public int GradientAccumulation { get; init; } = 1;

    /// <summary>Evaluate every this many steps (and at the end); 0 evaluates only at the end.</summary>
    public long EvalEvery { get; init; }

    /// <summary>The most batches one evaluation during <see cref="Trainer.Fit"/> reads (the first ones, in order); 0 reads the whole eval set.</summary>
    public int EvalBatches { get; init; }

    /// <summary>Stop after this many evaluations without a new best eval loss and restore the best parameters; 0 turns early stopping off.</summary>
    public int EarlyStoppingPatience { get; init; }

    /// <summary>
    /// Save a checkpoint (<see cref="Trainer.SaveCheckpoint"/>) every this many steps and at the end of
    /// <see cref="Trainer.Fit"/>; 0 saves none. Needs <see cref="CheckpointPath"/>.
    /// </summary>
    public long CheckpointEvery { get; init; }

    /// <summary>
    /// Where checkpoints go: a file path, written atomically (the previous checkpoint stays whole until the new one is
    /// complete). <c>{step}</c> in the path is replaced by the step, to keep one file per checkpoint.
    /// </summary>
    public string? CheckpointPath { get; init; }

    /// <summary>
    /// Train data-parallel over this group of ranks (one trainer per rank, each with its own program; in-process ranks or
    /// MPI). Each step every rank takes its <c>BatchSize / Size</c> rows of the same global batch, so a run on N ranks
    /// follows the single-device run. Only rank 0 shows progress and writes metrics and checkpoints. Null: one device.
    /// </summary>
    public Kiln.Runtime.Collectives.ICommunicator? Communicator { get; init; }

    /// <summary>What data-parallel ranks shard (<see cref="ZeroStage"/>); ZeRO needs checkpoints through <see cref="DataParallel.SaveCheckpoint"/>.</summary>
    public ZeroStage Zero { get; init; }

    /// <summary>Run seed: keys parameter initialisation, data order and dropout.</summary>
    public ulong Seed { get; init; } = 1337;

    /// <summary>Path of a JSON Lines metrics file (one object per step and per evaluation), or null for none. A run that starts at step 0 replaces the file; one that continues (after <see cref="Trainer.LoadCheckpoint"/>, or a second <see cref="Trainer.Fit"/>) appends to it.</summary>
    public string? MetricsLog { get; init; }

    /// <summary>How progress is shown.</summary>
    public ProgressMode Progress { get; init; } = ProgressMode.Auto;

    /// <summary>
    /// Where training runs: <c>"cpu"</c>, <c>"cuda"</c> (GPU 0), <c>"cuda:N"</c>, or <c>"auto"</c> (GPU 0 when the
    /// CUDA driver and a GPU are present, else the CPU).
    /// </summary>
    public string Device { get; init; } = "auto";

    /// <summary>
    /// How low-precision tensors are stored: <see cref="PrecisionMode.Auto"/> is bf16 on a GPU and fp32 on the
    /// CPU. bf16 and fp16 on the CPU are emulated (values rounded where a GPU would store 16 bits), for
    /// checking mixed-precision numerics without a GPU. fp16 trains with dynamic loss scaling.
    /// </summary>
    public PrecisionMode Precision { get; init; } = PrecisionMode.Auto;

    /// <summary>
    /// The initial fp16 loss scale (PyTorch GradScaler's <c>init_scale</c>, 2¹⁶). A step whose scaled gradients
    /// overflow is skipped and the scale halves; after 2000 clean steps it doubles. Ignored for fp32 and bf16.
    /// </summary>
    public float InitialLossScale { get; init; } = 65536f;

    /// <summary>Round the low-precision copy of the parameters stochastically after each update (bf16/fp16 only).</summary>
    public bool StochasticRounding { get; init; }

    /// <summary>Consecutive steps with a non-finite loss or gradient norm that are skipped before training stops with an error.</summary>
    public int MaxConsecutiveSkips { get; init; } = 5;

    /// <summary>Checks every option, naming the first bad one and its fix.</summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    /// <exception cref="NotSupportedException"><see cref="Device"/> names a device this build cannot run on.</exception>
    public void Validate()
    {
        Require(Steps > 0, nameof(Steps), $"must be positive (got {Steps}); set it to the number of optimizer steps to run.");
        Require(BatchSize > 0, nameof(BatchSize), $"must be positive (got {BatchSize}).");
        Require(float.IsFinite(LearningRate) && LearningRate > 0, nameof(LearningRate), $"must be positive and finite (got {LearningRate}); 3e-3 is a good start for small models with AdamW.");
        Require(float.IsFinite(MinLearningRate) && MinLearningRate >= 0 && MinLearningRate <= LearningRate, nameof(MinLearningRate),
            $"must be between 0 and LearningRate = {LearningRate} (got {MinLearningRate}).");
        Require(WarmupSteps >= 0, nameof(WarmupSteps), $"must be 0 or more (got {WarmupSteps}).");
        Require(Enum.IsDefined(Schedule), nameof(Schedule), $"must be Cosine or Constant (got {(int)Schedule}).");
        Require(Enum.IsDefined(Optimizer), nameof(Optimizer), $"must be AdamW or Sgd (got {(int)Optimizer}).");
        Require(Beta1 >= 0 && Beta1 < 1, nameof(Beta1), $"must be in [0, 1) (got {Beta1}); 0.9 is usual.");
        Require(Beta2 >= 0 && Beta2 < 1, nameof(Beta2), $"must be in [0, 1) (got {Beta2}); 0.999, or 0.95 for GPT-style training.");
        Require(float.IsFinite(Eps) && Eps > 0, nameof(Eps), $"must be positive and finite (got {Eps}); 1e-8 is usual.");
        Require(float.IsFinite(WeightDecay) && WeightDecay >= 0, nameof(WeightDecay), $"must be 0 or more and finite (got {WeightDecay}).");
        Require(Momentum >= 0 && Momentum < 1, nameof(Momentum), $"must be in [0, 1) (got {Momentum}).");
        Require(!Nesterov || Optimizer != OptimizerKind.Sgd || Momentum > 0, nameof(Nesterov), "needs Momentum above 0; set Momentum (e.g. 0.9) or turn Nesterov off.");
        Require(float.IsFinite(ClipGradNorm) && ClipGradNorm >= 0, nameof(ClipGradNorm), $"must be 0 (off) or a positive, finite norm (got {ClipGradNorm}).");
        Require(GradientAccumulation >= 1, nameof(GradientAccumulation), $"must be 1 or more (got {GradientAccumulation}).");
        Require(GradientAccumulation <= 4096, nameof(GradientAccumulation), $"must be at most 4096 (got {GradientAccumulation}); dropout masks key the micro-step in 12 bits — use a larger BatchSize instead.");
        Require(EvalEvery >= 0, nameof(EvalEvery), $"must be 0 (evaluate only at the end) or a positive number of steps (got {EvalEvery}).");
        Require(EvalBatches >= 0, nameof(EvalBatches), $"must be 0 (the whole eval set) or a positive number of batches (got {EvalBatches}).");
        Require(EarlyStoppingPatience >= 0, nameof(EarlyStoppingPatience), $"must be 0 (off) or a positive number of evaluations (got {EarlyStoppingPatience}).");
        Require(EarlyStoppingPatience == 0 || EvalEvery > 0, nameof(EarlyStoppingPatience),
            $"= {EarlyStoppingPatience} needs periodic evaluation; set EvalEvery to a number of steps, or set EarlyStoppingPatience = 0.");
        Require(MetricsLog is null || !string.IsNullOrWhiteSpace(MetricsLog), nameof(MetricsLog), "must be a file path or null (no log), not an empty string.");
        Require(CheckpointEvery >= 0, nameof(CheckpointEvery), $"must be 0 (no checkpoints) or a positive number of steps (got {CheckpointEvery}).");
        Require(Communicator is null || BatchSize % Communicator.Size == 0, nameof(BatchSize),
            $"must be divisible by the {Communicator?.Size} data-parallel ranks (got {BatchSize}): each rank takes an equal share of every batch.");
        Require(Communicator is not null || Zero == ZeroStage.None, nameof(Zero), "needs a Communicator: ZeRO shards state across data-parallel ranks.");
        Require(CheckpointEvery == 0 || Zero == ZeroStage.None, nameof(CheckpointEvery),
            "cannot write single-file checkpoints under ZeRO (each rank holds part of the optimizer state); save with DataParallel.SaveCheckpoint, or set Zero = None.");
        Require(CheckpointEvery == 0 || !string.IsNullOrWhiteSpace(CheckpointPath), nameof(CheckpointPath),
            $"must name a file when CheckpointEvery = {CheckpointEvery}, e.g. \"checkpoints/run-{{step}}.safetensors\".");
        Require(Enum.IsDefined(Progress), nameof(Progress), $"must be Auto, Plain or None (got {(int)Progress}).");
        Require(MaxConsecutiveSkips >= 1, nameof(MaxConsecutiveSkips), $"must be 1 or more (got {MaxConsecutiveSkips}).");
        Require(float.IsFinite(InitialLossScale) && InitialLossScale >= 1f, nameof(InitialLossScale), $"must be finite and at least 1 (got {InitialLossScale}); 65536 is PyTorch's default.");
        Require(Enum.IsDefined(Precision), nameof(Precision), $"must be Auto, Float32, BFloat16 or Float16 (got {(int)Precision}).");
        Require(!string.IsNullOrWhiteSpace(Device), nameof(Device), "must be \"cpu\", \"cuda\", \"cuda:N\" or \"auto\".");
        Kiln.Runtime.Cuda.DeviceName.Parse(Device);
    }

    private static void Require(bool ok, string option, string problem)
    {
        if (!ok) throw new ArgumentException($"TrainOptions.{option} {problem}", option);
    }
}
