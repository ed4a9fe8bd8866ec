using System;
using System.Globalization;

namespace Kiln.Generators.Ir;

/// <summary>
/// A symbolic float (a scale, an epsilon, a dropout rate): a constant, a float hyperparameter, an
/// integer dimension, or arithmetic over those. Folds when every leaf is constant.
/// </summary>
internal sealed class Scalar : IEquatable<Scalar>
{
    private enum K { Const, Hyper, FromSym, Add, Sub, Mul, Div, Neg, Sqrt }

    private readonly K _k;
    private readonly double _value;
    private readonly string? _name;
    private readonly Sym? _sym;
    private readonly Scalar? _a, _b;
    private readonly string _key;

    private Scalar(K k, double value = 0, string? name = null, Sym? sym = null, Scalar? a = null, Scalar? b = null)
    {
        _k = k; _value = value; _name = name; _sym = sym; _a = a; _b = b;
        _key = k switch
        {
            K.Const => value.ToString("R", CultureInfo.InvariantCulture),
            K.Hyper => name!,
            K.FromSym => "{" + sym + "}",
            K.Neg => "-(" + a!._key + ")",
            K.Sqrt => "sqrt(" + a!._key + ")",
            _ => "(" + a!._key + " " + Op(k) + " " + b!._key + ")",
        };
    }

    private static string Op(K k) => k switch { K.Add => "+", K.Sub => "-", K.Mul => "*", _ => "/" };

    public static Scalar Const(double v) => new(K.Const, v);
    public static Scalar Hyper(string name) => new(K.Hyper, name: name);
    public static Scalar FromSym(Sym s) => s.IsConst ? Const(s.ConstValue) : new(K.FromSym, sym: s);

    public bool IsConst => _k == K.Const;
    public double Value => _k == K.Const ? _value : throw new InvalidOperationException($"{this} is not constant.");

    public static Scalar operator +(Scalar a, Scalar b) => a.IsConst && b.IsConst ? Const(a._value + b._value) : a.IsConst && a._value == 0 ? b : b.IsConst && b._value == 0 ? a : new(K.Add, a: a, b: b);
    public static Scalar operator -(Scalar a, Scalar b) => a.IsConst && b.IsConst ? Const(a._value - b._value) : b.IsConst && b._value == 0 ? a : new(K.Sub, a: a, b: b);
    public static Scalar operator *(Scalar a, Scalar b) => a.IsConst && b.IsConst ? Const(a._value * b._value) : a.IsConst && a._value == 1 ? b : b.IsConst && b._value == 1 ? a : new(K.Mul, a: a, b: b);
    public static Scalar operator /(Scalar a, Scalar b) => a.IsConst && b.IsConst ? Const(a._value / b._value) : b.IsConst && b._value == 1 ? a : new(K.Div, a: a, b: b);
    public static Scalar operator -(Scalar a) => a.IsConst ? Const(-a._value) : new(K.Neg, a: a);
    public static Scalar Sqrt(Scalar a) => a.IsConst ? Const(Math.Sqrt(a._value)) : new(K.Sqrt, a: a);

    public double Eval(Func<string, double> hyper, Func<string, long> sym) => _k switch
    {
        K.Const => _value,
        K.Hyper => hyper(_name!),
        K.FromSym => _sym!.Eval(sym),
        K.Add => _a!.Eval(hyper, sym) + _b!.Eval(hyper, sym),
        K.Sub => _a!.Eval(hyper, sym) - _b!.Eval(hyper, sym),
        K.Mul => _a!.Eval(hyper, sym) * _b!.Eval(hyper, sym),
        K.Div => _a!.Eval(hyper, sym) / _b!.Eval(hyper, sym),
        K.Neg => -_a!.Eval(hyper, sym),
        K.Sqrt => Math.Sqrt(_a!.Eval(hyper, sym)),
        _ => throw new InvalidOperationException(),
    };

    /// <summary>C# source of a <c>double</c> expression.</summary>
    public string ToCSharp(Func<string, string> name) => _k switch
    {
        K.Const => Literal(_value),
        K.Hyper => "(double)" + name(_name!),
        K.FromSym => "(double)(" + _sym!.ToCSharp(name) + ")",
        K.Neg => "(-" + _a!.ToCSharp(name) + ")",
        K.Sqrt => "global::System.Math.Sqrt(" + _a!.ToCSharp(name) + ")",
        _ => "(" + _a!.ToCSharp(name) + " " + Op(_k) + " " + _b!.ToCSharp(name) + ")",
    };

    public static string Literal(double v)
    {
        if (double.IsPositiveInfinity(v)) return "double.PositiveInfinity";
        if (double.IsNegativeInfinity(v)) return "double.NegativeInfinity";
        if (double.IsNaN(v)) return "double.NaN";
        var s = v.ToString("R", CultureInfo.InvariantCulture);
        return s.Contains(".") || s.Contains("E") ? s + "d" : s + ".0d";
    }

    public override string ToString() => _k == K.Const ? _value.ToString("G9", CultureInfo.InvariantCulture) : _key;
    public bool Equals(Scalar? other) => other is not null && other._key == _key;
    public override bool Equals(object? obj) => obj is Scalar s && Equals(s);
    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(_key);
}
