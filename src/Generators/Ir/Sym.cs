using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;

namespace Kiln.Generators.Ir;

/// <summary>
/// A symbolic non-negative integer (a tensor dimension, an offset): a polynomial with integer
/// coefficients over atoms. Atoms are named symbols (B, T, a hyperparameter) or floor quotients that
/// could not be simplified. The form is canonical, so structural equality is symbolic equality.
/// </summary>
internal sealed class Sym : IEquatable<Sym>
{
    // Canonical: terms sorted by monomial key, no zero coefficients. The constant term has key "".
    private readonly Term[] _terms;
    private readonly string _key;

    private readonly struct Term
    {
        public Term(Atom[] atoms, long coeff) { Atoms = atoms; Coeff = coeff; Key = MonoKey(atoms); }
        public Atom[] Atoms { get; }
        public long Coeff { get; }
        public string Key { get; }
    }

    private Sym(IEnumerable<Term> terms)
    {
        _terms = terms.Where(t => t.Coeff != 0).OrderBy(t => t.Key, StringComparer.Ordinal).ToArray();
        _key = string.Join("+", _terms.Select(t => t.Coeff.ToString(CultureInfo.InvariantCulture) + "·" + t.Key));
    }

    public static readonly Sym Zero = new(Array.Empty<Term>());
    public static readonly Sym One = Const(1);

    public static Sym Const(long value) => new(new[] { new Term(Array.Empty<Atom>(), value) });
    public static Sym Var(string name) => new(new[] { new Term(new Atom[] { new Atom(name, null, null, comparison: false) }, 1) });

    public bool IsConst => _terms.Length == 0 || (_terms.Length == 1 && _terms[0].Atoms.Length == 0);
    public long ConstValue => _terms.Length == 0 ? 0 : _terms[0].Atoms.Length == 0 && _terms.Length == 1 ? _terms[0].Coeff
        : throw new InvalidOperationException($"{this} is not a constant.");
    /// <summary>The smallest multiple of <paramref name="multiple"/> not below this value (unchanged when every term is already a multiple).</summary>
    public Sym RoundUpTo(long multiple)
    {
        if (multiple <= 1 || _terms.All(t => t.Coeff % multiple == 0)) return this;
        if (IsConst) return Const((ConstValue + multiple - 1) / multiple * multiple);
        return Div(this + (multiple - 1), Const(multiple)) * multiple;
    }

    public bool TryConst(out long value)
    {
        if (IsConst) { value = ConstValue; return true; }
        value = 0; return false;
    }

    /// <summary>The names of all symbols this expression mentions.</summary>
    public IEnumerable<string> Symbols => _terms.SelectMany(t => t.Atoms).SelectMany(a => a.Symbols).Distinct();

    /// <summary>The symbols this expression uses as sizes (not those only compared inside a condition).</summary>
    public IEnumerable<string> SizeSymbols => _terms.SelectMany(t => t.Atoms).SelectMany(a => a.SizeSymbols).Distinct();

    /// <summary>
    /// 1 when <paramref name="a"/> <paramref name="op"/> <paramref name="b"/> holds, else 0 (op: <c>&lt; &gt; &lt;= &gt;= == !=</c>);
    /// a constant when both sides are. A condition on hyperparameters that the program decides when it is constructed.
    /// </summary>
    public static Sym Compare(Sym a, string op, Sym b)
    {
        if (a.IsConst && b.IsConst) return Const(Holds(a.ConstValue, op, b.ConstValue) ? 1 : 0);
        return new Sym(new[] { new Term(new[] { new Atom(op, a, b, comparison: true) }, 1) });
    }

    private static bool Holds(long x, string op, long y) => op switch
    {
        "<" => x < y, ">" => x > y, "<=" => x <= y, ">=" => x >= y, "==" => x == y, "!=" => x != y,
        _ => throw new ArgumentException($"unknown comparison '{op}'"),
    };

    /// <summary>Whether this is 0 or 1 by construction (a comparison, or the constants 0 and 1).</summary>
    public bool IsCondition => (IsConst && ConstValue is 0 or 1) || (_terms.Length == 1 && _terms[0].Coeff == 1 && _terms[0].Atoms.Length == 1 && _terms[0].Atoms[0].Comparison is not null);

    public static Sym operator +(Sym a, Sym b)
    {
        var map = new Dictionary<string, Term>(StringComparer.Ordinal);
        foreach (var t in a._terms.Concat(b._terms))
            map[t.Key] = map.TryGetValue(t.Key, out var e) ? new Term(e.Atoms, e.Coeff + t.Coeff) : t;
        return new Sym(map.Values);
    }

    public static Sym operator -(Sym a) => new(a._terms.Select(t => new Term(t.Atoms, -t.Coeff)));
    public static Sym operator -(Sym a, Sym b) => a + -b;
    public static Sym operator +(Sym a, long b) => a + Const(b);
    public static Sym operator *(Sym a, long b) => a * Const(b);

    public static Sym operator *(Sym a, Sym b)
    {
        var result = Zero;
        foreach (var x in a._terms)
            foreach (var y in b._terms)
            {
                var atoms = x.Atoms.Concat(y.Atoms).OrderBy(t => t.Key, StringComparer.Ordinal).ToArray();
                result += new Sym(new[] { new Term(atoms, x.Coeff * y.Coeff) });
            }
        return result;
    }

    /// <summary>Floor division; exact polynomial division when it exists, else an atom.</summary>
    public static Sym Div(Sym a, Sym b)
    {
        if (b.IsConst && b.ConstValue == 0) throw new DivideByZeroException("Symbolic division by zero.");
        if (a.IsConst && b.IsConst) return Const(FloorDiv(a.ConstValue, b.ConstValue));
        if (b.IsConst && b.ConstValue == 1) return a;
        if (b._terms.Length == 1)
        {
            var d = b._terms[0];
            var outTerms = new List<Term>();
            foreach (var t in a._terms)
            {
                if (t.Coeff % d.Coeff != 0) goto atom;
                var rest = t.Atoms.ToList();
                foreach (var atom in d.Atoms)
                {
                    int idx = rest.FindIndex(x => x.Key == atom.Key);
                    if (idx < 0) goto atom;
                    rest.RemoveAt(idx);
                }
                outTerms.Add(new Term(rest.ToArray(), t.Coeff / d.Coeff));
            }
            return new Sym(outTerms);
        }
    atom:
        return new Sym(new[] { new Term(new[] { new Atom(null, a, b, comparison: false) }, 1) });
    }

    private static long FloorDiv(long a, long b) => (long)Math.Floor((double)a / b);

    /// <summary>Compares assuming every atom is ≥ 1 (dimensions are positive).</summary>
    public static SymCompare Compare(Sym a, Sym b)
    {
        var diff = a - b;
        if (diff._terms.Length == 0) return SymCompare.Equal;
        if (diff._terms.All(t => t.Coeff > 0)) return SymCompare.Greater;
        if (diff._terms.All(t => t.Coeff < 0)) return SymCompare.Less;
        return SymCompare.Unknown;
    }

    /// <summary>True when a − b has no negative coefficient: a ≥ b for all positive atom values.</summary>
    public static bool ProvablyGreaterOrEqual(Sym a, Sym b) => (a - b)._terms.All(t => t.Coeff > 0);

    public long Eval(Func<string, long> lookup)
    {
        long sum = 0;
        foreach (var t in _terms)
        {
            long v = t.Coeff;
            foreach (var a in t.Atoms) v = checked(v * a.Eval(lookup));
            sum = checked(sum + v);
        }
        return sum;
    }

    /// <summary>C# source evaluating this expression as a <c>long</c>, with symbols mapped by <paramref name="name"/>.</summary>
    public string ToCSharp(Func<string, string> name)
    {
        if (_terms.Length == 0) return "0L";
        var sb = new StringBuilder();
        foreach (var t in _terms)
        {
            var parts = new List<string>();
            if (t.Atoms.Length == 0 || t.Coeff != 1) parts.Add(t.Coeff.ToString(CultureInfo.InvariantCulture) + "L");
            parts.AddRange(t.Atoms.Select(a => a.ToCSharp(name)));
            var prod = string.Join(" * ", parts);
            if (sb.Length > 0) sb.Append(" + ");
            sb.Append(prod);
        }
        return _terms.Length == 1 ? sb.ToString() : "(" + sb + ")";
    }

    public override string ToString()
    {
        if (_terms.Length == 0) return "0";
        var sb = new StringBuilder();
        // Highest-degree terms first reads naturally (B*T + 1).
        foreach (var t in _terms.OrderByDescending(t => t.Atoms.Length).ThenBy(t => t.Key, StringComparer.Ordinal))
        {
            long c = t.Coeff;
            if (sb.Length > 0) { sb.Append(c < 0 ? " - " : " + "); c = Math.Abs(c); }
            else if (c < 0) { sb.Append('-'); c = -c; }
            if (t.Atoms.Length == 0) { sb.Append(c.ToString(CultureInfo.InvariantCulture)); continue; }
            if (c != 1) sb.Append(c.ToString(CultureInfo.InvariantCulture)).Append('*');
            sb.Append(string.Join("*", t.Atoms.Select(a => a.ToString())));
        }
        return sb.ToString();
    }

    public bool Equals(Sym? other) => other is not null && other._key == _key;
    public override bool Equals(object? obj) => obj is Sym s && Equals(s);
    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(_key);

    private static string MonoKey(Atom[] atoms) => string.Join("*", atoms.Select(a => a.Key));

    /// <summary>A name, a floor quotient that did not simplify, or a comparison (0 or 1).</summary>
    private sealed class Atom
    {
        public Atom(string? nameOrOp, Sym? num, Sym? den, bool comparison)
        {
            if (comparison) { Comparison = nameOrOp; Num = num; Den = den; Key = "[" + num!._key + " " + nameOrOp + " " + den!._key + "]"; }
            else { Name = nameOrOp; Num = num; Den = den; Key = nameOrOp ?? "(" + num!._key + "/" + den!._key + ")"; }
        }
        public string? Name { get; }
        /// <summary>The comparison operator of a comparison atom (its sides are Num and Den).</summary>
        public string? Comparison { get; }
        public Sym? Num { get; }
        public Sym? Den { get; }
        public string Key { get; }
        public IEnumerable<string> Symbols => Name is not null ? new[] { Name } : Num!.Symbols.Concat(Den!.Symbols);
        public IEnumerable<string> SizeSymbols => Name is not null ? new[] { Name } : Comparison is not null ? Enumerable.Empty<string>() : Num!.SizeSymbols.Concat(Den!.SizeSymbols);
        public long Eval(Func<string, long> lookup)
        {
            if (Name is not null) return lookup(Name);
            if (Comparison is not null) return Holds(Num!.Eval(lookup), Comparison, Den!.Eval(lookup)) ? 1 : 0;
            long d = Den!.Eval(lookup);
            if (d == 0) throw new DivideByZeroException($"{this} divides by zero.");
            return FloorDiv(Num!.Eval(lookup), d);
        }
        public string ToCSharp(Func<string, string> name) =>
            Name is not null ? name(Name)
            : Comparison is not null ? "((" + Num!.ToCSharp(name) + ") " + Comparison + " (" + Den!.ToCSharp(name) + ") ? 1L : 0L)"
            : "((" + Num!.ToCSharp(name) + ") / (" + Den!.ToCSharp(name) + "))";
        public override string ToString() => Name ?? (Comparison is not null ? "[" + Num + " " + Comparison + " " + Den + "]" : "(" + Num + "/" + Den + ")");
    }
}

internal enum SymCompare { Equal, Greater, Less, Unknown }

/// <summary>Helpers over symbolic shapes.</summary>
internal static class Shapes
{
    public static Sym Numel(IReadOnlyList<Sym> shape)
    {
        var n = Sym.One;
        foreach (var d in shape) n *= d;
        return n;
    }

    public static string Format(IReadOnlyList<Sym> shape) => "[" + string.Join(", ", shape.Select(d => d.ToString())) + "]";

    public static bool Same(IReadOnlyList<Sym> a, IReadOnlyList<Sym> b)
    {
        if (a.Count != b.Count) return false;
        for (int i = 0; i < a.Count; i++) if (!a[i].Equals(b[i])) return false;
        return true;
    }
}
