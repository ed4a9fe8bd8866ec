using Kiln.Generators.Common;

namespace Kiln.Generators.Parsing;

// Equatable records that carry a model declaration out of the semantic transform. No Roslyn symbol,
// syntax node or Location crosses this boundary: locations are plain data (LocationInfo).

/// <summary>A source location as data: file, span and 0-based line/column range.</summary>
internal sealed record LocationInfo(string File, int Start, int Length, int Line, int Column, int EndLine, int EndColumn)
{
    /// <summary>1-based line, as users and compiler messages count.</summary>
    public int Line1 => Line + 1;
}

/// <summary>A diagnostic as data (descriptor ID, location, message arguments).</summary>
internal sealed record DiagnosticInfo(string Id, LocationInfo? Location, EquatableArray<string> Args)
{
    public static DiagnosticInfo Create(string id, LocationInfo? location, params string[] args) => new(id, location, args.ToEquatableArray());
}

/// <summary>What a call in a model method resolves to.</summary>
internal enum CallKind { Op, TensorMember, Layer, Module, Self, Math, Repeat, Parameter }

internal abstract record Expr(LocationInfo Loc, string Text);
internal sealed record LitExpr(LocationInfo Loc, string Text, double Value, string Type) : Expr(Loc, Text);
internal sealed record NameExpr(LocationInfo Loc, string Text, string Name) : Expr(Loc, Text);
internal sealed record MemberExpr(LocationInfo Loc, string Text, Expr Target, string Member) : Expr(Loc, Text);
internal sealed record CallExpr(LocationInfo Loc, string Text, CallKind Kind, string Method, Expr? Receiver, EquatableArray<Expr> Args) : Expr(Loc, Text);
internal sealed record BinaryExpr(LocationInfo Loc, string Text, string Op, Expr Left, Expr Right) : Expr(Loc, Text);
internal sealed record UnaryExpr(LocationInfo Loc, string Text, string Op, Expr Operand) : Expr(Loc, Text);
internal sealed record CondExpr(LocationInfo Loc, string Text, Expr Condition, Expr WhenTrue, Expr WhenFalse) : Expr(Loc, Text);
internal sealed record NewExpr(LocationInfo Loc, string Text, string Type, EquatableArray<Expr> Args) : Expr(Loc, Text);
internal sealed record LambdaExpr(LocationInfo Loc, string Text, string Parameter, Expr Body) : Expr(Loc, Text);
internal sealed record IndexExpr(LocationInfo Loc, string Text, Expr Target, Expr Index) : Expr(Loc, Text);
internal sealed record ArrayExpr(LocationInfo Loc, string Text, EquatableArray<Expr> Items) : Expr(Loc, Text);
internal sealed record CastExpr(LocationInfo Loc, string Text, string Type, Expr Operand) : Expr(Loc, Text);

internal abstract record Stmt(LocationInfo Loc);
internal sealed record LocalStmt(LocationInfo Loc, string Name, Expr Value) : Stmt(Loc);
internal sealed record AssignStmt(LocationInfo Loc, string Name, string Op, Expr Value) : Stmt(Loc);
internal sealed record ReturnStmt(LocationInfo Loc, Expr Value) : Stmt(Loc);
internal sealed record ForEachStmt(LocationInfo Loc, string Variable, Expr Collection, EquatableArray<Stmt> Body) : Stmt(Loc);
internal sealed record ForStmt(LocationInfo Loc, string Variable, Expr Start, Expr End, EquatableArray<Stmt> Body) : Stmt(Loc);
internal sealed record IfStmt(LocationInfo Loc, Expr Condition, EquatableArray<Stmt> Then, EquatableArray<Stmt> Else) : Stmt(Loc);

/// <summary>A parameter of a model method: name, kind (tensor, int tensor, int, float, bool) and [Shape] dims.</summary>
internal sealed record ParamSpec(string Name, string Type, EquatableArray<string>? Dims, LocationInfo Loc);

internal sealed record MethodSpec(string Name, EquatableArray<ParamSpec> Params, EquatableArray<Stmt> Body, string ReturnType, LocationInfo Loc);

/// <summary>
/// A field: its name, what it holds (layer kind, module type, array of either, <c>param</c> for a Tensor parameter,
/// or a plain value), its initializer, the weight-decay choice of a parameter field (null: the default by rank) and
/// whether repeated blocks it holds recompute their forward in the backward pass ([Recompute]), and the tensor-parallel
/// layout of a Linear field ([ColumnParallel]: <c>column:G</c> with G groups, [RowParallel]: <c>row</c>).
/// </summary>
internal sealed record FieldSpec(string Name, string Type, Expr? Init, LocationInfo Loc, bool? WeightDecay = null, bool Recompute = false, string? Split = null);

/// <summary>A primary-constructor parameter: name, C# type keyword and default value (if any).</summary>
internal sealed record HyperSpec(string Name, string Type, double? Default, LocationInfo Loc);

internal sealed record ModuleSpec(string FullName, string Name, EquatableArray<HyperSpec> Hypers, EquatableArray<FieldSpec> Fields,
    EquatableArray<MethodSpec> Methods, LocationInfo Loc, bool Recompute = false);

/// <summary>Everything the compiler needs about one [Model] class and the modules it reaches.</summary>
internal sealed record ModelSpec(string Namespace, string Name, string FullName, EquatableArray<string> ContainingTypes, string Accessibility,
    string RootModule, EquatableArray<ModuleSpec> Modules, string? LossMethod, LocationInfo Loc, ParallelSpec? Parallel = null);

/// <summary>
/// The model's [Parallel] declaration: mesh degrees, micro-batches per step, ZeRO stage (0–2) and the global batch and
/// sequence length the plan is made for (0: not given). <paramref name="Loc"/> is the attribute's location.
/// </summary>
internal sealed record ParallelSpec(int Data, int Tensor, int Pipeline, int MicroBatches, int Zero, int Batch, int Sequence, LocationInfo Loc)
{
    /// <summary>One device, one micro-batch, no ZeRO: the plan of a model without [Parallel].</summary>
    public static ParallelSpec Single(LocationInfo loc) => new(1, 1, 1, 1, 0, 0, 0, loc);

    /// <summary>Whether the model declared it (a default plan has no attribute location).</summary>
    public bool Declared { get; init; } = true;
}

/// <summary>The transform's result: a spec (absent when the declaration is unusable) and diagnostics.</summary>
internal sealed record ParseResult(ModelSpec? Spec, EquatableArray<DiagnosticInfo> Diagnostics);
