using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis;

namespace Kiln.Generators.Diagnostics;

/// <summary>
/// The one table of Kiln diagnostics. IDs are stable and never reused; each is documented in
/// docs/diagnostics.md with a bad example and the fix. Ranges: KILN0xxx declarations and parsing,
/// KILN1xxx shapes, KILN2xxx autodiff, KILN3xxx precision/fusion, KILN4xxx sharding, KILN5xxx memory,
/// KILN6xxx emit.
/// </summary>
internal static class Descriptors
{
    private const string Decl = "Kiln.Declaration";
    private const string Parse = "Kiln.Parsing";
    private const string Shape = "Kiln.Shapes";
    private const string Grad = "Kiln.Autodiff";
    private const string Emit = "Kiln.Emit";
    private const string Shard = "Kiln.Sharding";
    private const string Memory = "Kiln.Memory";
    private const string HelpBase = "https://github.com/kiln/kiln/blob/main/docs/diagnostics.md#";

    private static DiagnosticDescriptor E(string id, string title, string message, string category, DiagnosticSeverity severity = DiagnosticSeverity.Error) =>
        new(id, title, message, category, severity, isEnabledByDefault: true, helpLinkUri: HelpBase + id.ToLowerInvariant());

    public static readonly DiagnosticDescriptor NotPartial = E("KILN0001", "Model class must be partial",
        "[{0}] class '{1}' must be declared partial so Kiln can generate its training program; add the 'partial' modifier", Decl);
    public static readonly DiagnosticDescriptor ContainerNotPartial = E("KILN0002", "Containing type must be partial",
        "[Model] class '{0}' is nested in '{1}', which is not partial; make every containing type partial or move the model to namespace level", Decl);
    public static readonly DiagnosticDescriptor Generic = E("KILN0003", "Model or module class cannot be generic",
        "'{0}' is generic; Kiln models and modules must be non-generic classes (use primary-constructor hyperparameters instead)", Decl);
    public static readonly DiagnosticDescriptor LossNotTensor = E("KILN0004", "Loss method must return a Tensor",
        "[Loss] method '{0}' returns '{1}'; it must return a scalar Kiln.Tensor (e.g. Ops.CrossEntropy(...) or Ops.MseLoss(...))", Decl);
    public static readonly DiagnosticDescriptor NoLoss = E("KILN0005", "Model has no loss method",
        "[Model] class '{0}' has no [Loss] method; add one returning a scalar Tensor, e.g. [Loss] public Tensor Loss(...) => Ops.CrossEntropy(Forward(x), y)", Decl);
    public static readonly DiagnosticDescriptor ManyLosses = E("KILN0006", "More than one loss method",
        "[Model] class '{0}' has more than one [Loss] method ({1}); keep exactly one", Decl);
    public static readonly DiagnosticDescriptor NoForward = E("KILN0007", "Module has no method to call",
        "'{0}' has no method '{1}' that Kiln can compile; declare 'public Tensor {1}(Tensor x)' in the [Module] class", Parse);
    public static readonly DiagnosticDescriptor BadHyperType = E("KILN0008", "Unsupported hyperparameter type",
        "Hyperparameter '{0}' has type '{1}'; Kiln hyperparameters are int, long, float, double or bool", Decl);
    public static readonly DiagnosticDescriptor FieldNotInitialized = E("KILN0010", "Layer field must be initialized where it is declared",
        "Field '{0}' of type '{1}' has no initializer; Kiln reads layers from field initializers, e.g. '{1} {0} = new(...)'", Parse);
    public static readonly DiagnosticDescriptor BadFieldType = E("KILN0011", "Unsupported field type in a model",
        "Field '{0}' has type '{1}', which Kiln cannot compile; use a Kiln layer (Linear, Embedding, LayerNorm, Dropout), a [Module] class, an array of them, or a Tensor parameter (Tensor gain = Parameter.Ones(dim))", Parse);
    public static readonly DiagnosticDescriptor Untraceable = E("KILN0012", "Layer built from a value Kiln cannot trace",
        "'{0}' cannot be traced to hyperparameters and constants ({1}); layer and module arguments must be built from primary-constructor parameters, literals and arithmetic", Parse);
    public static readonly DiagnosticDescriptor StructuralNoDefault = E("KILN0013", "Structural hyperparameter needs a default",
        "'{0}' decides the model's structure ({1}) and must have a build-time value: give hyperparameter(s) {2} a default value in the primary constructor", Parse);
    public static readonly DiagnosticDescriptor RecursiveModule = E("KILN0014", "Module contains itself",
        "Module '{0}' contains itself through {1}; a module cannot hold an instance of its own type, directly or indirectly", Parse);
    public static readonly DiagnosticDescriptor RecursiveCall = E("KILN0015", "Recursive call between model methods",
        "'{0}' calls itself through {1}; model methods are inlined at build time and cannot recurse", Parse);
    public static readonly DiagnosticDescriptor Overloaded = E("KILN0016", "Overloaded model method",
        "'{0}' has overloads; Kiln inlines model methods by name, so give each method a distinct name", Parse);
    public static readonly DiagnosticDescriptor TensorFieldNotParameter = E("KILN0017", "Tensor field is not a parameter declaration",
        "{0}; declare a trainable tensor as a field initialized with Parameter.Zeros(...), Parameter.Ones(...), Parameter.Normal(std, ...) or Parameter.Uniform(bound, ...)", Parse);
    public static readonly DiagnosticDescriptor InvalidDeclaredValue = E("KILN0018", "Invalid value in a declaration",
        "{0}", Parse);
    public static readonly DiagnosticDescriptor DefaultBreaksModel = E("KILN0019", "Hyperparameter defaults break the model",
        "With the defaults of {0}, {1}; constructing the model with them would fail. Change the default, or always pass a value that satisfies it", Parse, DiagnosticSeverity.Warning);
    public static readonly DiagnosticDescriptor ReservedName = E("KILN0020", "Member name reserved for generated code",
        "'{0}' is generated into every [Model] class by Kiln ({1}); rename this member", Decl);
    public static readonly DiagnosticDescriptor LayerInMethod = E("KILN0021", "Layer created inside a model method",
        "'{0}' creates {1} inside a model method, so it would get new parameters on every call; declare it as a field ('{2} name = new(...);') and call it here", Parse);
    public static readonly DiagnosticDescriptor BadMethodSignature = E("KILN0022", "Model method signature Kiln cannot compile",
        "'{0}' {1}; Kiln compiles model methods into a dataflow graph: take tensors and numbers by value and return a Tensor synchronously", Decl);
    public static readonly DiagnosticDescriptor RecordModel = E("KILN0023", "Model or module declared as a record",
        "'{0}' is a record; Kiln generates the other half of a partial class, so declare it as 'partial class {0}(...)'", Decl);
    public static readonly DiagnosticDescriptor LossInModule = E("KILN0024", "[Loss] in a module",
        "'{0}' is marked [Loss] in module '{1}', where it has no effect: only a [Model] has a loss. Move the method to the model, or remove the attribute", Decl);
    public static readonly DiagnosticDescriptor LayerNotInField = E("KILN0025", "Layer held by a property or static field",
        "'{0}' holds {1} in a {2}; Kiln reads layers and modules from instance fields with initializers, so declare it as '{3} {0} = new(...);'", Parse);

    public static readonly DiagnosticDescriptor UnsupportedStatement = E("KILN0100", "Unsupported statement in a model method",
        "{0} is not supported in a Kiln model method; use local variables, assignments, foreach/for over modules, constants or hyperparameters, if on constants and hyperparameters, and return", Parse);
    public static readonly DiagnosticDescriptor UnsupportedExpression = E("KILN0101", "Unsupported expression in a model method",
        "{0} is not supported in a Kiln model method: '{1}'", Parse);
    public static readonly DiagnosticDescriptor UnknownCall = E("KILN0102", "Call of a method Kiln cannot compile",
        "'{0}' is not a Kiln operation; model methods may call Ops.*, layer and module Forward methods, methods of the same class, and System.Math on scalars", Parse);
    public static readonly DiagnosticDescriptor UnsupportedNew = E("KILN0103", "Unsupported object creation",
        "'new {0}' is not supported here; model fields may create Kiln layers and [Module] classes only", Parse);
    public static readonly DiagnosticDescriptor NoSuchMember = E("KILN0104", "Member not available",
        "{0}", Parse);
    public static readonly DiagnosticDescriptor MissingReturn = E("KILN0105", "Model method does not return a value",
        "Method '{0}' ends without returning a value on some path", Parse);
    public static readonly DiagnosticDescriptor WrongValueKind = E("KILN0106", "Value of the wrong kind",
        "'{0}' is {1} but {2} is needed here", Parse);
    public static readonly DiagnosticDescriptor BadAssignment = E("KILN0107", "Unsupported assignment target",
        "Only local variables and parameters can be assigned in a model method; '{0}' is not one", Parse);
    public static readonly DiagnosticDescriptor NonConstantCondition = E("KILN0108", "Condition not known at build time",
        "The condition '{0}' is not known at build time: {1}; Kiln compiles one program, so 'if' may only test constants and int or bool hyperparameters (use Ops.Where for data-dependent choices)", Parse);

    public static readonly DiagnosticDescriptor MatMulInner = E("KILN1001", "Matrix product dimensions differ", "{0}", Shape);
    public static readonly DiagnosticDescriptor Broadcast = E("KILN1002", "Shapes do not broadcast", "{0}", Shape);
    public static readonly DiagnosticDescriptor Rank = E("KILN1003", "Wrong rank or axis", "{0}", Shape);
    public static readonly DiagnosticDescriptor ReshapeCount = E("KILN1004", "Reshape changes the element count", "{0}", Shape);
    public static readonly DiagnosticDescriptor MseShapes = E("KILN1005", "Loss operands differ in shape", "{0}", Shape);
    public static readonly DiagnosticDescriptor SliceRange = E("KILN1006", "Slice out of range", "{0}", Shape);
    public static readonly DiagnosticDescriptor DType = E("KILN1007", "Wrong element type", "{0}", Shape);
    public static readonly DiagnosticDescriptor NotConstant = E("KILN1008", "Argument must be a build-time constant", "{0}", Shape);
    public static readonly DiagnosticDescriptor NoShape = E("KILN1009", "Input tensor needs [Shape]",
        "Parameter '{0}' of '{1}' is a tensor input; declare its dimensions, e.g. [Shape(\"B\", \"T\")] {2} {0}", Shape);
    public static readonly DiagnosticDescriptor LossNotScalar = E("KILN1010", "Loss is not a scalar",
        "The loss returned by '{0}' has shape {1}; it must be a scalar: reduce it, e.g. with Ops.Mean(...)", Shape);
    public static readonly DiagnosticDescriptor BadDimName = E("KILN1011", "Invalid [Shape] dimension",
        "[Shape] dimension '{0}' {1}; a dimension is a positive integer (\"4\"), a size name bound from the data (\"B\") or an int hyperparameter", Shape);
    public static readonly DiagnosticDescriptor ArgumentShape = E("KILN1012", "Argument does not have its declared shape", "{0}", Shape);
    public static readonly DiagnosticDescriptor IndexPastTable = E("KILN1013", "Indices past the end of a table", "{0}", Shape);

    public static readonly DiagnosticDescriptor NoGradient = E("KILN2001", "No gradient rule", "{0}", Grad);
    public static readonly DiagnosticDescriptor SecondOrder = E("KILN2002", "Second-order gradient", "{0}", Grad);
    public static readonly DiagnosticDescriptor NoTrainableParams = E("KILN2003", "Loss does not depend on any parameter",
        "The loss of '{0}' does not depend on any parameter, so training cannot change it", Grad, DiagnosticSeverity.Warning);

    public static readonly DiagnosticDescriptor HeadsNotDivisible = E("KILN4001", "Attention heads not divisible by the tensor degree",
        "'{0}' has {1} attention heads{2}, which do not divide over Tensor = {3}: each tensor rank holds whole heads. Use {4}, or a head count that is a multiple of {3}", Shard);
    public static readonly DiagnosticDescriptor LayersNotDivisible = E("KILN4002", "Layers not divisible by the pipeline stages",
        "'{0}' {1}, which do not split into Pipeline = {2} equal stages; {3}", Shard);
    public static readonly DiagnosticDescriptor TooFewMicroBatches = E("KILN4003", "Fewer micro-batches than pipeline stages",
        "'{0}' runs MicroBatches = {1} through Pipeline = {2} stages; a stage would wait for every micro-batch and the pipeline never fills. Use at least {2} (under a GPipe/1F1B schedule MicroBatches = {3} leaves a bubble of {4})", Shard);
    public static readonly DiagnosticDescriptor VocabularyNotPadded = E("KILN4004", "Vocabulary not padded for the tensor degree",
        "'{0}' has a vocabulary of {1}{2}, not a multiple of Tensor ({3}) × 64 = {4}: the vocabulary-parallel embedding and cross-entropy split it evenly. Pad it to {5} (the extra rows are never targets)", Shard);
    public static readonly DiagnosticDescriptor BatchNotDivisible = E("KILN4005", "Batch not divisible by data ranks × micro-batches",
        "'{0}' plans a global Batch = {1}, which does not divide over Data = {2} ranks × MicroBatches = {3}; use {4}", Shard);
    public static readonly DiagnosticDescriptor PipelineSequential = E("KILN4006", "Pipeline stages run one micro-batch at a time",
        "'{0}' declares Pipeline = {1}: each stage holds its share of the layers, but the stages run each micro-batch one after another (no GPipe/1F1B overlap yet), so a stage idles {2} of the step. The stages divide the memory, not the time; prefer data or tensor parallelism when the model fits", Shard, DiagnosticSeverity.Warning);
    public static readonly DiagnosticDescriptor NoTensorParallelLayers = E("KILN4007", "A tensor degree without tensor-parallel layers",
        "'{0}' declares Tensor = {1} but {2}, so every tensor rank would hold and compute the whole model. Give the model an int hyperparameter 'tensor' and pass it to its layers (Kiln.Nn's GptBlock, LlamaBlock, CausalSelfAttention, GeluMlp and SwiGlu take one), or declare Tensor = 1", Shard, DiagnosticSeverity.Warning);
    public static readonly DiagnosticDescriptor PlanOverMemory = E("KILN5001", "The plan does not fit device memory",
        "'{0}' needs {1} per rank, more than KilnDeviceMemory = {2} ({3}). What fits: {4}", Memory);
    public static readonly DiagnosticDescriptor BadDeviceMemory = E("KILN5002", "KilnDeviceMemory is not a size",
        "KilnDeviceMemory = '{0}' is not a size; write bytes or a number with a unit, e.g. 80GiB, 79.6GB or 24576MiB", Memory);

    public static readonly DiagnosticDescriptor Internal = E("KILN6001", "Kiln internal error",
        "Kiln could not compile '{0}' because of an internal error: {1}. Please report it with the model source", Emit);

    private static readonly Dictionary<string, DiagnosticDescriptor> ById =
        typeof(Descriptors).GetFields().Where(f => f.FieldType == typeof(DiagnosticDescriptor))
            .Select(f => (DiagnosticDescriptor)f.GetValue(null)!).ToDictionary(d => d.Id);

    public static DiagnosticDescriptor Get(string id) => ById[id];

    public static IEnumerable<DiagnosticDescriptor> All => ById.Values;
}
