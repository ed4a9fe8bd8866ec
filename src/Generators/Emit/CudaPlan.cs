using System.Collections.Generic;
using Kiln.Generators.Ir;

namespace Kiln.Generators.Emit;

/// <summary>What one argument of a kernel launch is, for the host code that passes it.</summary>
internal enum CudaArgKind
{
    /// <summary>The device address of a node's storage.</summary>
    Buffer,
    /// <summary>A symbolic size, passed as <c>long long</c>.</summary>
    Size,
    /// <summary>A symbolic float (a fused constant or an op's scalar), passed as <c>float</c>.</summary>
    Float,
    /// <summary>A C# expression of the host program (the seed, a Philox stream), passed as is.</summary>
    Host,
}

/// <summary>One kernel argument: the node whose storage is passed, or a size, a float or a host expression.</summary>
internal sealed record CudaArg(CudaArgKind Kind, int Node = -1, Sym? Size = null, Scalar? Float = null, string? Host = null)
{
    public static CudaArg Buffer(int node) => new(CudaArgKind.Buffer, Node: node);
    public static CudaArg Sz(Sym s) => new(CudaArgKind.Size, Size: s);
    public static CudaArg Fl(Scalar s) => new(CudaArgKind.Float, Float: s);
    public static CudaArg Expr(string csharp) => new(CudaArgKind.Host, Host: csharp);
}

/// <summary>
/// How a kernel's grid is sized: one thread per element, one warp per row (both grid-stride), or a given
/// number of 256-thread blocks (grid-stride over blocks; the kernel relies on exactly 256 threads per block).
/// </summary>
internal enum CudaGrid { Elements, Warps, Blocks }

/// <summary>
/// The launch of one emitted kernel for one fusion group: name, grid shape and work (elements or rows),
/// the arguments in parameter order, and a node whose storage must be zeroed first (a scatter-add target
/// that does not accumulate into the gradient slab), or -1.
/// </summary>
internal sealed record CudaLaunch(string Kernel, CudaGrid Grid, Sym Work, IReadOnlyList<CudaArg> Args, int ZeroFirst = -1);

/// <summary>The CUDA translation unit of a model and, per program, the launch of every group that has a kernel.</summary>
internal sealed class CudaModule
{
    public CudaModule(string source, string fileName, IReadOnlyDictionary<string, Dictionary<int, CudaLaunch>> launches,
        IReadOnlyDictionary<string, Dictionary<int, Dictionary<int, CudaLaunch>>> loopLaunches)
    { Source = source; FileName = fileName; Launches = launches; LoopLaunches = loopLaunches; }

    /// <summary>Per program, per loop node: the launch of each group of the loop's body.</summary>
    public IReadOnlyDictionary<string, Dictionary<int, Dictionary<int, CudaLaunch>>> LoopLaunches { get; }

    /// <summary>The CUDA C source (self-contained).</summary>
    public string Source { get; }

    /// <summary>The program name NVRTC reports diagnostics under.</summary>
    public string FileName { get; }

    /// <summary>Per program (by name), the launch of each fusion group (by group id) that runs an emitted kernel.</summary>
    public IReadOnlyDictionary<string, Dictionary<int, CudaLaunch>> Launches { get; }
}
