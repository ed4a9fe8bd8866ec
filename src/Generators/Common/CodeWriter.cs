using System.Text;

namespace Kiln.Generators.Common;

/// <summary>The one indented text writer every emitter uses.</summary>
internal sealed class CodeWriter
{
    private readonly StringBuilder _sb = new();
    private int _indent;
    private bool _lineStart = true;

    public CodeWriter Line(string text = "")
    {
        if (text.Length > 0)
        {
            if (_lineStart) _sb.Append(' ', _indent * 4);
            _sb.Append(text);
        }
        _sb.Append('\n');
        _lineStart = true;
        return this;
    }

    public CodeWriter Open(string text)
    {
        Line(text);
        Line("{");
        _indent++;
        return this;
    }

    public CodeWriter Close(string suffix = "")
    {
        _indent--;
        Line("}" + suffix);
        return this;
    }

    public CodeWriter Indent() { _indent++; return this; }
    public CodeWriter Dedent() { _indent--; return this; }

    public override string ToString() => _sb.ToString();
}
