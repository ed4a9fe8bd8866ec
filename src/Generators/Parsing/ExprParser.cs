using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Threading;
using Kiln.Generators.Common;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Kiln.Generators.Parsing;

/// <summary>
/// Reads one C# expression of a model method or field initializer into an <see cref="Expr"/>, resolving
/// calls with the semantic model. Anything outside the supported subset becomes a located diagnostic
/// and a placeholder literal, so parsing continues and every problem is reported in one build.
/// </summary>
internal sealed class ExprParser
{
    private readonly SemanticModel _model;
    private readonly List<DiagnosticInfo> _diags;
    private readonly CancellationToken _ct;
    private readonly INamedTypeSymbol _owner;
    private readonly bool _fieldInitializer;

    // fieldInitializer: the expression initializes a field, so every value in it must trace to hyperparameters
    // and constants (a method result is reported as untraceable rather than as an unknown operation).
    public ExprParser(SemanticModel model, List<DiagnosticInfo> diags, CancellationToken ct, INamedTypeSymbol owner, bool fieldInitializer = false)
    { _model = model; _diags = diags; _ct = ct; _owner = owner; _fieldInitializer = fieldInitializer; }

    /// <summary>A diagnostic reported at <paramref name="at"/> (a declaration) for a use at <paramref name="e"/>, reported once per declaration.</summary>
    private Expr ErrorAt(ExpressionSyntax e, LocationInfo at, string id, params string[] args)
    {
        var d = DiagnosticInfo.Create(id, at, args);
        if (!_diags.Contains(d)) _diags.Add(d);
        return new LitExpr(ModelParser.Loc(e), e.ToString(), 0, "error");
    }

    /// <summary>"a Linear layer", "module Block" or "an array of them" when <paramref name="t"/> holds layers or modules, else null.</summary>
    private static string? HoldsLayer(ITypeSymbol t)
    {
        if (t is IArrayTypeSymbol a) return HoldsLayer(a.ElementType) is null ? null : "an array of " + (ModelParser.LayerName(a.ElementType) is { } l ? l + " layers" : "modules " + a.ElementType.Name);
        if (ModelParser.LayerName(t) is { } layer) return "a " + layer + " layer";
        return ModelParser.IsModuleType(t) ? "module " + t.Name : null;
    }

    private Expr Error(ExpressionSyntax e, string id, params string[] args)
    {
        _diags.Add(DiagnosticInfo.Create(id, ModelParser.Loc(e), args));
        return new LitExpr(ModelParser.Loc(e), e.ToString(), 0, "error");
    }

    public Expr Parse(ExpressionSyntax e)
    {
        _ct.ThrowIfCancellationRequested();
        var loc = ModelParser.Loc(e);
        var text = e.ToString();

        // Constants fold first (literals, consts, 2 * 3): the compiler already knows their value.
        if (e is not ObjectCreationExpressionSyntax and not ImplicitObjectCreationExpressionSyntax)
        {
            var cv = _model.GetConstantValue(e, _ct);
            if (cv.HasValue)
            {
                switch (cv.Value)
                {
                    case bool b: return new LitExpr(loc, text, b ? 1 : 0, "bool");
                    case int or long or short or byte or sbyte or uint or ushort: return new LitExpr(loc, text, Convert.ToDouble(cv.Value, CultureInfo.InvariantCulture), "int");
                    case float f: return new LitExpr(loc, text, f, "float");
                    case double d: return new LitExpr(loc, text, d, "double");
                    case string: return Error(e, "KILN0101", "A string", text);
                    case null: return Error(e, "KILN0101", "'null'", text);
                }
            }
        }

        switch (e)
        {
            case ParenthesizedExpressionSyntax p: return Parse(p.Expression);
            case IdentifierNameSyntax id: return ParseName(id);
            case ThisExpressionSyntax: return Error(e, "KILN0101", "'this' on its own", text);
            case MemberAccessExpressionSyntax ma when ma.Expression is ThisExpressionSyntax: return ParseName(ma.Name);
            case MemberAccessExpressionSyntax ma:
            {
                var sym = _model.GetSymbolInfo(ma, _ct).Symbol;
                if (sym is IPropertySymbol or IFieldSymbol)
                {
                    var owner = sym.ContainingType?.ToDisplayString() ?? "";
                    bool kiln = owner.StartsWith("Kiln.", StringComparison.Ordinal) || ModelParser.IsModuleType(sym.ContainingType!) ||
                                SymbolEqualityComparer.Default.Equals(sym.ContainingType, _owner);
                    bool arrayLength = sym.Name == "Length" && sym.ContainingType?.SpecialType == SpecialType.System_Array;
                    if (kiln || arrayLength) return new MemberExpr(loc, text, Parse(ma.Expression), sym.Name);
                }
                return Error(e, "KILN0101", "Member access '" + ma.Name + "'" + (sym is null ? "" : " of " + sym.ContainingType?.ToDisplayString()), text);
            }
            case InvocationExpressionSyntax inv: return ParseCall(inv);
            case BinaryExpressionSyntax b:
            {
                var op = b.OperatorToken.Text;
                if (op is "+" or "-" or "*" or "/" or "%" or "<" or ">" or "<=" or ">=" or "==" or "!=" or "&&" or "||")
                    return new BinaryExpr(loc, text, op, Parse(b.Left), Parse(b.Right));
                return Error(e, "KILN0101", "The operator '" + op + "'", text);
            }
            case PrefixUnaryExpressionSyntax u when u.OperatorToken.Text is "-" or "+" or "!":
                return new UnaryExpr(loc, text, u.OperatorToken.Text, Parse(u.Operand));
            case ConditionalExpressionSyntax c:
                return new CondExpr(loc, text, Parse(c.Condition), Parse(c.WhenTrue), Parse(c.WhenFalse));
            case CastExpressionSyntax cast:
            {
                var t = _model.GetTypeInfo(cast.Type, _ct).Type;
                var kw = t is null ? null : ModelParser.TypeKeyword(t);
                if (kw is null) return Error(e, "KILN0101", "A cast to '" + cast.Type + "'", text);
                return new CastExpr(loc, text, kw, Parse(cast.Expression));
            }
            case ObjectCreationExpressionSyntax or ImplicitObjectCreationExpressionSyntax:
                return ParseNew((BaseObjectCreationExpressionSyntax)e);
            case SimpleLambdaExpressionSyntax sl when sl.ExpressionBody is not null:
                return new LambdaExpr(loc, text, sl.Parameter.Identifier.Text, Parse(sl.ExpressionBody));
            case ParenthesizedLambdaExpressionSyntax pl when pl.ExpressionBody is not null && pl.ParameterList.Parameters.Count == 1:
                return new LambdaExpr(loc, text, pl.ParameterList.Parameters[0].Identifier.Text, Parse(pl.ExpressionBody));
            case ElementAccessExpressionSyntax ea when ea.ArgumentList.Arguments.Count == 1:
                return new IndexExpr(loc, text, Parse(ea.Expression), Parse(ea.ArgumentList.Arguments[0].Expression));
            case ArrayCreationExpressionSyntax ac when ac.Initializer is not null:
                return new ArrayExpr(loc, text, ac.Initializer.Expressions.Select(Parse).ToEquatableArray());
            case ImplicitArrayCreationExpressionSyntax iac:
                return new ArrayExpr(loc, text, iac.Initializer.Expressions.Select(Parse).ToEquatableArray());
            default:
                return Error(e, "KILN0101", Describe(e), text);
        }
    }

    private static string Describe(ExpressionSyntax e) => e switch
    {
        LambdaExpressionSyntax => "A lambda with a block body or several parameters",
        SwitchExpressionSyntax => "A switch expression",
        InterpolatedStringExpressionSyntax => "An interpolated string",
        AssignmentExpressionSyntax => "An assignment inside an expression",
        PostfixUnaryExpressionSyntax or PrefixUnaryExpressionSyntax => "The operator '" + (e is PostfixUnaryExpressionSyntax p ? p.OperatorToken.Text : ((PrefixUnaryExpressionSyntax)e).OperatorToken.Text) + "'",
        CollectionExpressionSyntax => "A collection expression",
        QueryExpressionSyntax => "A LINQ query",
        AwaitExpressionSyntax => "'await'",
        TupleExpressionSyntax => "A tuple",
        IsPatternExpressionSyntax => "A pattern match",
        ThrowExpressionSyntax => "A throw expression",
        TypeOfExpressionSyntax => "'typeof'",
        DefaultExpressionSyntax or LiteralExpressionSyntax => "A default or non-numeric literal",
        ConditionalAccessExpressionSyntax => "The '?.' operator",
        _ => "This kind of expression (" + e.Kind() + ")",
    };

    private Expr ParseName(SimpleNameSyntax id)
    {
        var loc = ModelParser.Loc(id);
        var sym = _model.GetSymbolInfo(id, _ct).Symbol;
        switch (sym)
        {
            case ILocalSymbol or IParameterSymbol or IRangeVariableSymbol:
                return new NameExpr(loc, id.ToString(), id.Identifier.Text);
            case IFieldSymbol f when SymbolEqualityComparer.Default.Equals(f.ContainingType, _owner) && !f.IsStatic:
                return new NameExpr(loc, id.ToString(), f.Name);
            case IFieldSymbol f when f.IsStatic && HoldsLayer(f.Type) is { } held:
                return ErrorAt(id, ModelParser.LocOf(f), "KILN0025", f.Name, held, "static field", f.Type.ToDisplayString(SymbolDisplayFormat.MinimallyQualifiedFormat));
            case IPropertySymbol p when HoldsLayer(p.Type) is { } held:
                return ErrorAt(id, ModelParser.LocOf(p), "KILN0025", p.Name, held, "property", p.Type.ToDisplayString(SymbolDisplayFormat.MinimallyQualifiedFormat));
            case IFieldSymbol f when f.IsStatic:
                return Error(id, "KILN0012", id.ToString(), "it is static field " + f.ContainingType.Name + "." + f.Name + ", whose value is not known at build time");
            case IPropertySymbol p:
                return Error(id, "KILN0012", id.ToString(), "it is property " + p.Name + ", which the generator cannot evaluate");
            case null:
                return Error(id, "KILN0101", "An unresolved name", id.ToString());
            default:
                return Error(id, "KILN0101", "A reference to " + sym.Kind.ToString().ToLowerInvariant() + " '" + sym.Name + "'", id.ToString());
        }
    }

    private Expr ParseNew(BaseObjectCreationExpressionSyntax e)
    {
        var loc = ModelParser.Loc(e);
        var ctor = _model.GetSymbolInfo(e, _ct).Symbol as IMethodSymbol;
        var type = ctor?.ContainingType;
        if (type is null) return Error(e, "KILN0101", "An object creation the compiler could not resolve", e.ToString());
        string? key = ModelParser.LayerName(type) ?? (ModelParser.IsModuleType(type) ? "module:" + type.ToDisplayString() : null);
        if (key is null) return Error(e, "KILN0103", type.ToDisplayString());
        // Hyperparameters of a module are its primary-constructor parameters; arguments of any other
        // constructor would be dropped silently.
        if (ctor!.Parameters.Length > 0 && ctor.DeclaringSyntaxReferences.Any(r => r.GetSyntax(_ct) is ConstructorDeclarationSyntax))
        {
            var ps = string.Join(", ", ctor.Parameters.Select(p => p.Type.ToDisplayString(SymbolDisplayFormat.MinimallyQualifiedFormat) + " " + p.Name));
            return Error(e, "KILN0012", e.ToString(),
                $"module {type.Name} receives its arguments through the constructor '{type.Name}({ps})', which is not a primary constructor; declare them as 'class {type.Name}({ps})'");
        }
        return new NewExpr(loc, e.ToString(), key, NormalizeArgs(ctor!, e.ArgumentList?.Arguments ?? default, e));
    }

    private Expr ParseCall(InvocationExpressionSyntax inv)
    {
        var loc = ModelParser.Loc(inv);
        var text = inv.ToString();
        var info = _model.GetSymbolInfo(inv, _ct);
        var method = info.Symbol as IMethodSymbol ?? info.CandidateSymbols.OfType<IMethodSymbol>().FirstOrDefault();
        if (method is null) return Error(inv, "KILN0102", text);
        var owner = method.ContainingType;
        var ownerName = owner.ConstructedFrom.ToDisplayString();
        Expr? receiver = inv.Expression is MemberAccessExpressionSyntax ma && !method.IsStatic && ma.Expression is not ThisExpressionSyntax ? Parse(ma.Expression) : null;
        var args = NormalizeArgs(method, inv.ArgumentList.Arguments, inv);

        if (ownerName == "Kiln.Ops") return new CallExpr(loc, text, CallKind.Op, method.Name, null, args);
        if (ownerName is "Kiln.Tensor" or "Kiln.Tensor<T>") return new CallExpr(loc, text, CallKind.TensorMember, method.Name, receiver, args);
        if (ownerName == "Kiln.Module" && method.Name == "Repeat") return new CallExpr(loc, text, CallKind.Repeat, method.Name, null, args);
        if (ownerName == "Kiln.Module" && method.Name == "RoundUp") return new CallExpr(loc, text, CallKind.Math, method.Name, null, args);
        if (ownerName == "Kiln.Parameter") return new CallExpr(loc, text, CallKind.Parameter, method.Name, null, args);
        if (ModelParser.LayerName(owner) is not null && method.Name == "Forward") return new CallExpr(loc, text, CallKind.Layer, method.Name, receiver, args);
        if (SymbolEqualityComparer.Default.Equals(owner, _owner) && !method.IsStatic) return new CallExpr(loc, text, CallKind.Self, method.Name, null, args);
        if (ModelParser.IsModuleType(owner) && !method.IsStatic) return new CallExpr(loc, text, CallKind.Module, method.Name, receiver, args);
        if (ownerName is "System.Math" or "System.MathF" && method.Name is "Sqrt" or "Max" or "Min" or "Abs" or "Pow" or "Exp" or "Log")
            return new CallExpr(loc, text, CallKind.Math, method.Name, null, args);
        if (_fieldInitializer)
            return Error(inv, "KILN0012", text, "it is the result of " + owner.ToDisplayString() + "." + method.Name + ", which the generator does not run");
        return Error(inv, "KILN0102", owner.ToDisplayString() + "." + method.Name);
    }

    /// <summary>Arguments in parameter order, with defaults filled in and a params array collected.</summary>
    private EquatableArray<Expr> NormalizeArgs(IMethodSymbol method, SeparatedSyntaxList<ArgumentSyntax> args, ExpressionSyntax at)
    {
        var result = new Expr?[method.Parameters.Length];
        var paramsItems = new List<Expr>();
        int positional = 0;
        foreach (var a in args)
        {
            int index;
            if (a.NameColon is not null)
                index = method.Parameters.IndexOf(method.Parameters.FirstOrDefault(p => p.Name == a.NameColon.Name.Identifier.Text)!);
            else index = positional++;
            if (index < 0) continue;
            if (index >= method.Parameters.Length) index = method.Parameters.Length - 1;
            var p = method.Parameters[index];
            if (p.IsParams && a.NameColon is null)
            {
                // f(x, 1, 2, 3) or f(x, array): an explicit array passes through.
                var t = _model.GetTypeInfo(a.Expression, _ct).Type;
                if (t is IArrayTypeSymbol && args.Count == index + 1) result[index] = Parse(a.Expression);
                else paramsItems.Add(Parse(a.Expression));
                continue;
            }
            result[index] = Parse(a.Expression);
        }
        for (int i = 0; i < result.Length; i++)
        {
            var p = method.Parameters[i];
            if (result[i] is not null) continue;
            if (p.IsParams) { result[i] = new ArrayExpr(ModelParser.Loc(at), "", paramsItems.ToEquatableArray()); continue; }
            if (p.HasExplicitDefaultValue)
            {
                var v = p.ExplicitDefaultValue;
                double d = v is bool b ? (b ? 1 : 0) : v is null ? 0 : Convert.ToDouble(v, CultureInfo.InvariantCulture);
                result[i] = new LitExpr(ModelParser.Loc(at), v?.ToString() ?? "null", d, ModelParser.TypeKeyword(p.Type) ?? "double");
            }
            else result[i] = new LitExpr(ModelParser.Loc(at), "", 0, "error");
        }
        return result.Select(r => r!).ToEquatableArray();
    }
}

/// <summary>Reads a method body into <see cref="Stmt"/> records (the supported statement subset).</summary>
internal sealed class StatementParser
{
    private readonly SemanticModel _model;
    private readonly List<DiagnosticInfo> _diags;
    private readonly ExprParser _exprs;

    public StatementParser(SemanticModel model, List<DiagnosticInfo> diags, CancellationToken ct, INamedTypeSymbol owner)
    { _model = model; _diags = diags; _exprs = new ExprParser(model, diags, ct, owner); }

    public EquatableArray<Stmt> ParseBody(MethodDeclarationSyntax m)
    {
        if (m.ExpressionBody is not null)
            return new Stmt[] { new ReturnStmt(ModelParser.Loc(m.ExpressionBody.Expression), _exprs.Parse(m.ExpressionBody.Expression)) }.ToEquatableArray();
        if (m.Body is null) return EquatableArray<Stmt>.Empty;
        return Block(m.Body.Statements);
    }

    private EquatableArray<Stmt> Block(IEnumerable<StatementSyntax> statements)
    {
        var list = new List<Stmt>();
        foreach (var s in statements) Statement(s, list);
        return list.ToEquatableArray();
    }

    private EquatableArray<Stmt> Body(StatementSyntax s) => s is BlockSyntax b ? Block(b.Statements) : Block(new[] { s });

    private void Statement(StatementSyntax s, List<Stmt> into)
    {
        var loc = ModelParser.Loc(s);
        switch (s)
        {
            case BlockSyntax b:
                foreach (var inner in b.Statements) Statement(inner, into);
                return;
            case LocalDeclarationStatementSyntax ld:
                foreach (var v in ld.Declaration.Variables)
                {
                    if (v.Initializer is null) { Unsupported(s, "A local variable without an initializer ('" + v.Identifier.Text + "')"); continue; }
                    into.Add(new LocalStmt(ModelParser.Loc(v), v.Identifier.Text, _exprs.Parse(v.Initializer.Value)));
                }
                return;
            case ExpressionStatementSyntax { Expression: AssignmentExpressionSyntax a }:
            {
                var target = a.Left is MemberAccessExpressionSyntax { Expression: ThisExpressionSyntax } mt ? mt.Name : a.Left;
                var sym = _model.GetSymbolInfo(target).Symbol;
                if (target is not IdentifierNameSyntax id || sym is not (ILocalSymbol or IParameterSymbol))
                {
                    _diags.Add(DiagnosticInfo.Create("KILN0107", ModelParser.Loc(a.Left), a.Left.ToString()));
                    return;
                }
                var op = a.OperatorToken.Text;
                if (op is not ("=" or "+=" or "-=" or "*=" or "/=")) { Unsupported(s, "The assignment operator '" + op + "'"); return; }
                into.Add(new AssignStmt(loc, id.Identifier.Text, op, _exprs.Parse(a.Right)));
                return;
            }
            case ExpressionStatementSyntax { Expression: InvocationExpressionSyntax call }:
            {
                // A call whose result is dropped: a call Kiln cannot compile at all (Console.WriteLine) is
                // reported as that; a Kiln call as a discarded value.
                int before = _diags.Count;
                _exprs.Parse(call);
                if (_diags.Count == before) Unsupported(s, Describe(s));
                return;
            }
            case ReturnStatementSyntax r:
                if (r.Expression is null) { Unsupported(s, "A return without a value"); return; }
                into.Add(new ReturnStmt(loc, _exprs.Parse(r.Expression)));
                return;
            case ForEachStatementSyntax fe:
                into.Add(new ForEachStmt(loc, fe.Identifier.Text, _exprs.Parse(fe.Expression), Body(fe.Statement)));
                return;
            case ForStatementSyntax f when ParseFor(f) is { } loop:
                into.Add(loop);
                return;
            case IfStatementSyntax i:
                into.Add(new IfStmt(loc, _exprs.Parse(i.Condition), Body(i.Statement), i.Else is null ? EquatableArray<Stmt>.Empty : Body(i.Else.Statement)));
                return;
            case EmptyStatementSyntax:
                return;
            default:
                Unsupported(s, Describe(s));
                return;
        }
    }

    private Stmt? ParseFor(ForStatementSyntax f)
    {
        // for (int i = a; i < b; i++) — the one loop shape whose trip count is known at build time.
        if (f.Declaration is not { Variables.Count: 1 } decl || decl.Variables[0].Initializer is null) return null;
        var name = decl.Variables[0].Identifier.Text;
        if (f.Condition is not BinaryExpressionSyntax cond || cond.Left is not IdentifierNameSyntax l || l.Identifier.Text != name) return null;
        if (f.Incrementors.Count != 1) return null;
        var inc = f.Incrementors[0];
        bool plusOne = inc switch
        {
            PostfixUnaryExpressionSyntax p => p.OperatorToken.Text == "++" && p.Operand.ToString() == name,
            PrefixUnaryExpressionSyntax p => p.OperatorToken.Text == "++" && p.Operand.ToString() == name,
            AssignmentExpressionSyntax a => a.OperatorToken.Text == "+=" && a.Left.ToString() == name && a.Right.ToString() == "1",
            _ => false,
        };
        if (!plusOne) return null;
        var start = _exprs.Parse(decl.Variables[0].Initializer!.Value);
        var end = _exprs.Parse(cond.Right);
        var cloc = ModelParser.Loc(cond);
        if (cond.OperatorToken.Text == "<=")
            end = new BinaryExpr(cloc, cond.Right + " + 1", "+", end, new LitExpr(cloc, "1", 1, "int"));
        else if (cond.OperatorToken.Text != "<") return null;
        return new ForStmt(ModelParser.Loc(f), name, start, end, Body(f.Statement));
    }

    private void Unsupported(StatementSyntax s, string what) => _diags.Add(DiagnosticInfo.Create("KILN0100", ModelParser.Loc(s), what));

    private static string Describe(StatementSyntax s) => s switch
    {
        WhileStatementSyntax => "A while loop",
        DoStatementSyntax => "A do-while loop",
        ForStatementSyntax => "A for loop that is not 'for (int i = a; i < b; i++)'",
        TryStatementSyntax => "A try statement",
        ThrowStatementSyntax => "A throw statement",
        SwitchStatementSyntax => "A switch statement",
        UsingStatementSyntax => "A using statement",
        LockStatementSyntax => "A lock statement",
        LocalFunctionStatementSyntax => "A local function",
        GotoStatementSyntax or LabeledStatementSyntax => "goto and labels",
        BreakStatementSyntax => "A break statement",
        ContinueStatementSyntax => "A continue statement",
        YieldStatementSyntax => "A yield statement",
        ExpressionStatementSyntax e => "An expression statement ('" + e.Expression + "') whose value is discarded",
        _ => "This statement (" + s.Kind() + ")",
    };
}
