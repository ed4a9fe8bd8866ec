using System;

namespace Kiln.Generators.Ir;

/// <summary>A shape or dtype rule that fails; the lowerer turns it into a located KILN1xxx diagnostic.</summary>
internal sealed class ShapeException : Exception
{
    public ShapeException(string id, string message) : base(message) => Id = id;
    public string Id { get; }
}
