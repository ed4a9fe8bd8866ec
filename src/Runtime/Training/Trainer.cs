using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using Kiln.Runtime;
using Spectre.Console;

namespace Kiln;

/// <summary>
/// Trains a compiled <see cref="ModelProgram"/>: batches from a <see cref="Dataset"/>, gradient
/// accumulation, clipping, the learning-rate schedule, the optimizer, evaluation, early stopping,
/// progress and a metrics log. Everything runs on the calling thread.
/// </summary>
public sealed partial class Trainer
{
    private Dataset? _samplerFor;
    private EpochSampler? _sampler;

    /// <summary>Creates a trainer for <paramref name="program"/> and initialises its parameters from <see cref="TrainOptions.Seed"/>.</summary>
    /// <param name="program">The compiled model.</param>
    /// <param name="options">Run settings; validated here.</param>
    /// <param name="initializeParameters">False keeps the parameters as they are (loaded from a checkpoint, or set by hand).</param>
    /// <exception cref="ArgumentException">An option is out of range (the message names it).</exception>
    /// <exception cref="NotSupportedException">The device is not available in this build.</exception>
    public Trainer(ModelProgram program, TrainOptions options, bool initializeParameters = true)
    {
        ArgumentNullException.ThrowIfNull(program);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (program.PipelineGroup is { Size: > 1 })
            throw new NotSupportedException("The Trainer does not run pipeline stages yet (its evaluation and early stopping need the loss on every stage): train them with DataParallel.Step.");
        Program = program;
        Options = options;
        Optimizer = options.Optimizer switch
        {
            OptimizerKind.AdamW => new AdamW(options.Beta1, options.Beta2, options.Eps, options.WeightDecay),
            _ => new Sgd(options.Momentum, options.Nesterov, options.WeightDecay),
        };
        Schedule = options.Schedule == ScheduleKind.Cosine
            ? LearningRateSchedule.Cosine(options.LearningRate, options.MinLearningRate, options.WarmupSteps, options.Steps)
            : LearningRateSchedule.Constant(options.LearningRate, options.WarmupSteps);
        program.StochasticRounding = options.StochasticRounding;
        program.RoundingKey = (options.Seed, 0);
        if (program.TensorGroup is { Size: > 1 } && options.CheckpointEvery > 0)
            throw new ArgumentException("A tensor-parallel rank cannot write the Trainer's single-file checkpoints (it holds a piece of the model): set CheckpointEvery = 0, give TrainOptions.Communicator (a data group, of one rank if need be) and save with trainer.DataParallel.SaveCheckpoint, which writes the whole model.", nameof(options));
        if (initializeParameters && program.PipelineGroup is { Size: > 1 })
            throw new ArgumentException($"{program.ModelName} is one pipeline stage: initialise it as its piece of the whole model with PipelineParallel.Initialize(stage, wholeModel, seed, stage, stages), and pass initializeParameters: false.", nameof(initializeParameters));
        if (initializeParameters && program.TensorDegree > 1)
            throw new ArgumentException($"{program.ModelName} is one tensor-parallel rank (tensor = {program.TensorDegree}): initialise it as its piece of the whole model with TensorParallel.Initialize(program, wholeModel, seed, rank, size), set program.TensorGroup, and pass initializeParameters: false.", nameof(initializeParameters));
        if (initializeParameters) program.InitParameters(options.Seed);
        else program.ParametersChanged();
        program.ZeroGrads();
        if (program.Precision == PrecisionMode.Float16) LossScaler = new Kiln.Runtime.Precision.DynamicLossScaler(options.InitialLossScale);
        if (options.Communicator is { } comm) DataParallel = new DataParallel(program, Optimizer, comm, options.Zero);
    }

    /// <summary>The data-parallel driver when <see cref="TrainOptions.Communicator"/> is set (null on one device).</summary>
    public DataParallel? DataParallel { get; }

    /// <summary>Whether this trainer is the one that reports and writes (rank 0, or the only one).</summary>
    private bool Leader => (DataParallel is null || DataParallel.Communicator.Rank == 0) && (Program.TensorGroup?.Rank ?? 0) == 0
        && (Program.PipelineGroup is not { } p || p.Rank == p.Size - 1); // the last stage has the loss

    /// <summary>The dynamic loss scaler of fp16 training (PyTorch GradScaler semantics); null in fp32 and bf16.</summary>
    public Kiln.Runtime.Precision.DynamicLossScaler? LossScaler { get; }

    /// <summary>The program being trained.</summary>
    public ModelProgram Program { get; }

    /// <summary>The run settings.</summary>
    public TrainOptions Options { get; }

    /// <summary>The optimizer (its state is what a checkpoint saves besides the parameters).</summary>
    public Optimizer Optimizer { get; }

    /// <summary>The learning rate by step.</summary>
    public LearningRateSchedule Schedule { get; }

    /// <summary>
    /// Optimizer steps completed so far, skipped ones included. It keys dropout and the schedule, and
    /// carries over between <see cref="Fit"/> calls (a second call continues the schedule where the first ended).
    /// </summary>
    public long Step { get; private set; }

    /// <summary>Where plain progress lines go; the console unless a test redirects it.</summary>
    internal TextWriter? PlainOutput { get; set; }

    /// <summary>
    /// Trains on <paramref name="train"/> from the current <see cref="Step"/> up to <see cref="TrainOptions.Steps"/>,
    /// evaluating on <paramref name="eval"/> every <see cref="TrainOptions.EvalEvery"/> steps and at the end, and saving
    /// checkpoints every <see cref="TrainOptions.CheckpointEvery"/> steps and at the end. After
    /// <see cref="LoadCheckpoint"/> it continues the saved run: same schedule, data order and random streams.
    /// </summary>
    /// <param name="train">The training data.</param>
    /// <param name="eval">Data to evaluate on, or null.</param>
    /// <param name="untilStep">Stop at this step instead of <see cref="TrainOptions.Steps"/> (when it is smaller): a run
    /// can be trained in parts, each ending with an evaluation and a checkpoint; the schedule still spans Steps.</param>
    /// <exception cref="ArgumentException">The data cannot feed the configured run (too few examples, early stopping without eval data).</exception>
    /// <exception cref="TrainingDivergedException"><see cref="TrainOptions.MaxConsecutiveSkips"/> steps in a row had a non-finite loss or gradient norm.</exception>
    public TrainResult Fit(Dataset train, Dataset? eval = null, long? untilStep = null)
    {
        ArgumentNullException.ThrowIfNull(train);
        var o = Options;
        long end = Math.Min(o.Steps, untilStep ?? o.Steps);
        if (train.Count < o.BatchSize)
            throw new ArgumentException(
                $"The training set has {train.Count} examples, fewer than TrainOptions.BatchSize = {o.BatchSize}; lower BatchSize or add data.", nameof(train));
        if (eval is not null && eval.Count == 0)
            throw new ArgumentException("The eval set is empty; pass null to train without evaluation.", nameof(eval));
        if (o.EarlyStoppingPatience > 0 && eval is null)
            throw new ArgumentException(
                $"TrainOptions.EarlyStoppingPatience = {o.EarlyStoppingPatience} needs eval data: call Fit(train, eval), or set EarlyStoppingPatience = 0.", nameof(eval));
        CheckInputs(train, nameof(train));
        if (eval is not null) CheckInputs(eval, nameof(eval));
        if (_resumeData is { } resume)
        {
            if (resume.Examples != train.Count)
                throw new ArgumentException(
                    $"The checkpoint was saved while training on {resume.Examples} examples, but this training set has {train.Count}, so its data order cannot continue. " +
                    "Resume with the same data, or call ResetDataOrder() to start a fresh order on this data.", nameof(train));
            _sampler = new EpochSampler(train.Count, o.Seed, resume.Epoch, resume.Position);
            _samplerFor = train;
            _resumeData = null;
        }
        else if (!ReferenceEquals(_samplerFor, train) || _sampler is null)
        {
            _sampler = new EpochSampler(train.Count, o.Seed);
            _samplerFor = train;
        }

        // Every rank starts from rank 0's weights.
        DataParallel?.SynchronizeParameters();
        // A run that continues (a later Fit call, or one after LoadCheckpoint) adds to the log instead of replacing it.
        using var metrics = o.MetricsLog is null || !Leader ? null : MetricsLog.Create(o.MetricsLog, append: Step > 0);
        var run = new Run(this, train, eval, _sampler, metrics, end);
        if (Step >= end) return run.Execute(null);
        bool live = o.Progress == ProgressMode.Auto && AnsiConsole.Profile.Capabilities.Interactive && !Console.IsOutputRedirected;
        if (o.Progress == ProgressMode.None || !Leader) return run.Execute(null);
        if (!live) return run.Execute(new PlainProgress(PlainOutput ?? Console.Out, o.Steps));

        LiveProgress? display = null;
        var result = AnsiConsole.Progress()
            .AutoRefresh(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx => run.Execute(display = new LiveProgress(ctx, o.Steps)));
        // Lines written while the bar is live would tear it, so its messages wait until it has closed.
        foreach (var line in display!.Pending) AnsiConsole.WriteLine(line);
        return result;
    }

    /// <summary>
    /// The mean loss over all of <paramref name="data"/> (dropout off): batches of
    /// <see cref="TrainOptions.BatchSize"/> examples in order, the last one possibly smaller, each
    /// weighted by its number of examples.
    /// </summary>
    public double Evaluate(Dataset data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Count == 0) throw new ArgumentException("Cannot evaluate on an empty dataset.", nameof(data));
        return EvaluateBatches(data, 0);
    }

    /// <summary>The output of the model's <c>Forward</c> on <paramref name="batch"/> (dropout off).</summary>
    public TensorData Predict(Batch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        return Program.Forward(batch);
    }

    /// <summary>Fails before the first step, rather than deep inside it, when the data lacks an input of the loss.</summary>
    private void CheckInputs(Dataset data, string parameter)
    {
        var probe = data.GetBatch(stackalloc int[] { 0 });
        foreach (var input in Program.LossInputs)
        {
            if (!probe.Contains(input.Name))
                throw new ArgumentException(
                    $"The {parameter} data has no tensor named '{input.Name}', an input of {Program.ModelName}'s loss; it has: {string.Join(", ", probe.Names)}. " +
                    "Name the dataset tensors like the loss method's parameters.", parameter);
        }
    }

    private double EvaluateBatches(Dataset data, int maxBatches)
    {
        int batchSize = Options.BatchSize;
        var indices = new int[batchSize];
        double weighted = 0;
        long examples = 0;
        int batches = 0;
        for (int start = 0; start < data.Count && (maxBatches == 0 || batches < maxBatches); start += batchSize, batches++)
        {
            int size = Math.Min(batchSize, data.Count - start);
            for (int j = 0; j < size; j++) indices[j] = start + j;
            float loss = Program.EvalLoss(data.GetBatch(indices.AsSpan(0, size)));
            weighted += (double)loss * size;
            examples += size;
        }
        return weighted / examples;
    }

    /// <summary>What the progress display shows after a step or an evaluation.</summary>
    private readonly record struct Snapshot(long Done, long Total, double Loss, float LearningRate, double GradNorm, double? EvalLoss, double ExamplesPerSecond, long Skipped);

    private interface IProgressSink
    {
        /// <summary>Shows <paramref name="s"/> or not (throttling); true when it was shown.</summary>
        bool Report(in Snapshot s);
        void Message(string text);
    }

    /// <summary>One loop over the steps of a <see cref="Fit"/> call and the bookkeeping it needs.</summary>
    private sealed class Run(Trainer trainer, Dataset train, Dataset? eval, EpochSampler sampler, MetricsLog? metrics, long end)
    {
        private readonly List<double> _losses = new();
        private readonly List<EvalPoint> _evals = new();

        public TrainResult Execute(IProgressSink? progress)
        {
            var o = trainer.Options;
            var program = trainer.Program;
            int accumulation = o.GradientAccumulation;
            var indices = new int[o.BatchSize];
            var dp = trainer.DataParallel;
            int share = dp is null ? o.BatchSize : o.BatchSize / dp.Communicator.Size;
            var mine = dp is null ? indices : new int[share];
            var wall = Stopwatch.StartNew();
            var stepClock = new Stopwatch();
            double trainSeconds = 0;
            long examplesSeen = 0, skipped = 0, stepsRun = 0;
            int consecutiveSkips = 0;
            double bestEval = double.PositiveInfinity;
            long bestEvalStep = -1;
            int evalsWithoutImprovement = 0;
            float[]? bestParams = null;
            bool stoppedEarly = false;
            double? lastEval = null;
            double reportLoss = 0;
            int reportCount = 0;

            long remaining = Math.Max(0, end - trainer.Step);
            for (long i = 0; i < remaining; i++)
            {
                long step = trainer.Step;
                stepClock.Restart();
                double lossSum = 0;
                var scaler = trainer.LossScaler;
                float lossScale = scaler?.Scale ?? 1f;
                for (int micro = 0; micro < accumulation; micro++)
                {
                    // Every rank draws the same global batch and takes its rows of it.
                    sampler.Next(indices);
                    if (dp is not null) Array.Copy(indices, dp.Communicator.Rank * share, mine, 0, share);
                    var batch = train.GetBatch(mine);
                    lossSum += program.TrainStep(batch, new StepContext(o.Seed, step, micro, lossScale));
                }
                double loss, gradNorm;
                if (dp is not null) (loss, gradNorm) = dp.Reduce(accumulation, lossSum, lossScale);
                else
                {
                    loss = lossSum / accumulation;
                    // One pass both averages the accumulation group and removes the loss scale.
                    float unscale = 1f / (accumulation * lossScale);
                    if (unscale != 1f) program.ScaleGradients(unscale);
                    gradNorm = program.GradientNorm();
                }
                if (o.ClipGradNorm > 0 && double.IsFinite(gradNorm))
                {
                    // PyTorch's clip_grad_norm_: the factor max / (norm + 1e-6), applied only when below 1.
                    double factor = o.ClipGradNorm / (gradNorm + 1e-6);
                    if (factor < 1.0) program.ScaleGradients((float)factor);
                }
                float lr = trainer.Schedule.At(step);
                bool skip = !double.IsFinite(loss) || !double.IsFinite(gradNorm);
                // fp16: an overflow in the scaled gradients is the loss scaler's business (halve and retry), not divergence,
                // unless the scale is already at its floor.
                bool scalerSkip = scaler is not null && double.IsFinite(loss) && !double.IsFinite(gradNorm) && scaler.Scale > scaler.MinScale;
                scaler?.Update(!double.IsFinite(gradNorm));
                if (skip)
                {
                    skipped++;
                    if (scalerSkip) consecutiveSkips = 0;
                    else consecutiveSkips++;
                }
                else
                {
                    consecutiveSkips = 0;
                    program.RoundingKey = (o.Seed, step);
                    if (dp is not null) dp.Update(lr);
                    else trainer.Optimizer.Step(program, lr);
                    _losses.Add(loss);
                    reportLoss += loss;
                    reportCount++;
                }
                program.ZeroGrads();
                trainer.Step = step + 1;
                stepsRun++;
                stepClock.Stop();
                double seconds = stepClock.Elapsed.TotalSeconds;
                trainSeconds += seconds;
                long stepExamples = (long)o.BatchSize * accumulation;
                examplesSeen += stepExamples;
                double examplesPerSecond = seconds > 0 ? stepExamples / seconds : 0;
                metrics?.Step(trainer.Step, loss, lr, gradNorm, examplesPerSecond, skip);

                if (consecutiveSkips >= o.MaxConsecutiveSkips)
                {
                    string what = !double.IsFinite(loss) ? $"loss ({Format(loss)})" : $"gradient norm ({Format(gradNorm)})";
                    string message =
                        $"Training stopped at step {trainer.Step}: {consecutiveSkips} consecutive steps had a non-finite loss or gradient norm " +
                        $"(the last had a non-finite {what}), and TrainOptions.MaxConsecutiveSkips = {o.MaxConsecutiveSkips}. " +
                        "Skipped steps do not update the parameters, so they are those of the last good step. " +
                        "Lower LearningRate, keep ClipGradNorm on, or check the data for NaN/Inf values.";
                    progress?.Message(message);
                    throw new TrainingDivergedException(message, trainer.Step, consecutiveSkips);
                }

                bool last = i == remaining - 1;
                bool evalNow = eval is not null && (last || (o.EvalEvery > 0 && trainer.Step % o.EvalEvery == 0));
                if (evalNow)
                {
                    double e = trainer.EvaluateBatches(eval!, o.EvalBatches);
                    lastEval = e;
                    _evals.Add(new EvalPoint(trainer.Step, e));
                    metrics?.Eval(trainer.Step, e);
                    if (e < bestEval)
                    {
                        bestEval = e;
                        bestEvalStep = trainer.Step;
                        evalsWithoutImprovement = 0;
                        if (o.EarlyStoppingPatience > 0)
                        {
                            program.SyncParametersToHost();
                            bestParams ??= new float[program.Params.Length];
                            Array.Copy(program.Params, bestParams, bestParams.Length);
                        }
                    }
                    else
                    {
                        evalsWithoutImprovement++;
                    }
                    if (!last && o.EarlyStoppingPatience > 0 && evalsWithoutImprovement >= o.EarlyStoppingPatience && bestParams is not null)
                    {
                        Array.Copy(bestParams, program.Params, bestParams.Length);
                        program.ParametersChanged();
                        stoppedEarly = true;
                    }
                }

                if (o.CheckpointEvery > 0 && trainer.Leader && (last || stoppedEarly || trainer.Step % o.CheckpointEvery == 0))
                    trainer.SaveCheckpoint(o.CheckpointPath!.Replace("{step}", trainer.Step.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal));

                if (progress is not null)
                {
                    var snapshot = new Snapshot(trainer.Step, o.Steps, reportCount > 0 ? reportLoss / reportCount : double.NaN, lr, gradNorm, lastEval,
                        trainSeconds > 0 ? examplesSeen / trainSeconds : 0, skipped);
                    if (progress.Report(snapshot))
                    {
                        // The loss shown is the mean since the last line shown, which is steadier than one step's.
                        reportLoss = 0;
                        reportCount = 0;
                    }
                }

                if (stoppedEarly)
                {
                    progress?.Message(
                        $"Early stopping at step {trainer.Step}: eval loss has not improved for {evalsWithoutImprovement} evaluations " +
                        $"(TrainOptions.EarlyStoppingPatience = {o.EarlyStoppingPatience}); restored the parameters of step {bestEvalStep} (eval loss {Format(bestEval)}).");
                    break;
                }
            }

            wall.Stop();
            long tokensPerExample = train.TokensPerExample;
            double examplesPerSec = trainSeconds > 0 ? examplesSeen / trainSeconds : 0;
            return new TrainResult
            {
                StepsRun = stepsRun,
                FinalTrainLoss = TailMean(_losses, stepsRun),
                BestEvalLoss = bestEvalStep >= 0 ? bestEval : null,
                BestEvalStep = bestEvalStep >= 0 ? bestEvalStep : null,
                EvalHistory = _evals.ToArray(),
                StoppedEarly = stoppedEarly,
                SkippedSteps = skipped,
                ExamplesPerSecond = examplesPerSec,
                TokensPerSecond = tokensPerExample > 0 ? examplesPerSec * tokensPerExample : null,
                WallTime = wall.Elapsed,
            };
        }

        /// <summary>The mean of the last ~10% of the recorded (finite) step losses, at least one.</summary>
        private static double TailMean(List<double> losses, long stepsRun)
        {
            if (losses.Count == 0) return double.NaN;
            int k = (int)Math.Clamp(stepsRun / 10, 1, losses.Count);
            double sum = 0;
            for (int j = losses.Count - k; j < losses.Count; j++) sum += losses[j];
            return sum / k;
        }
    }

    private static string Format(double value) => value.ToString("0.####", CultureInfo.InvariantCulture);

    private static string Describe(in Snapshot s)
    {
        var text = $"step {s.Done}/{s.Total}  loss {(double.IsFinite(s.Loss) ? s.Loss.ToString("0.0000", CultureInfo.InvariantCulture) : "-")}" +
                   $"  lr {s.LearningRate.ToString("0.00e+0", CultureInfo.InvariantCulture)}";
        if (s.EvalLoss is double e) text += $"  eval {e.ToString("0.0000", CultureInfo.InvariantCulture)}";
        if (s.Skipped > 0) text += $"  skipped {s.Skipped}";
        return text;
    }

    /// <summary>A line about every 5% of the steps, for logs that are not terminals.</summary>
    private sealed class PlainProgress(TextWriter output, long total) : IProgressSink
    {
        private readonly long _interval = Math.Max(1, total / 20);

        public bool Report(in Snapshot s)
        {
            if (s.Done % _interval != 0 && s.Done != s.Total) return false;
            output.WriteLine($"{Describe(s)}  grad_norm {Format(s.GradNorm)}  {s.ExamplesPerSecond.ToString("0.0", CultureInfo.InvariantCulture)} examples/s");
            output.Flush();
            return true;
        }

        public void Message(string text)
        {
            output.WriteLine(text);
            output.Flush();
        }
    }

    /// <summary>A Spectre.Console progress bar redrawn from the training thread (no refresh thread).</summary>
    private sealed class LiveProgress : IProgressSink
    {
        private readonly ProgressContext _context;
        private readonly ProgressTask _task;
        private readonly Stopwatch _sinceRefresh = Stopwatch.StartNew();

        public LiveProgress(ProgressContext context, long total)
        {
            _context = context;
            _task = context.AddTask(Markup.Escape($"step 0/{total}"), maxValue: total);
        }

        public List<string> Pending { get; } = new();

        public bool Report(in Snapshot s)
        {
            _task.Value = s.Done;
            // Redrawing costs a few milliseconds; ten times a second is smooth enough.
            if (s.Done != s.Total && _sinceRefresh.ElapsedMilliseconds < 100) return false;
            _task.Description = Markup.Escape(Describe(s));
            _context.Refresh();
            _sinceRefresh.Restart();
            return true;
        }

        public void Message(string text) => Pending.Add(text);
    }
}
