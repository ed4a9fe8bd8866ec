using System;

namespace Kiln.Cuda.Emulator;

/// <summary>The CUDA emulator could not build or run something; the message names the problem, the place and the fix.</summary>
public class EmulatorException : Exception
{
    /// <summary>Creates the exception with its message.</summary>
    public EmulatorException(string message) : base(message) { }

    /// <summary>Creates the exception with its message and the failure underneath.</summary>
    public EmulatorException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>g++ rejected a module's CUDA C; the message carries the first lines of its output.</summary>
public sealed class EmulatorCompileException : EmulatorException
{
    /// <summary>Creates the exception.</summary>
    public EmulatorCompileException(string message, string compilerOutput, string sourcePath) : base(message)
    {
        CompilerOutput = compilerOutput;
        SourcePath = sourcePath;
    }

    /// <summary>Everything g++ printed.</summary>
    public string CompilerOutput { get; }

    /// <summary>The translation unit g++ was given (kept for inspection).</summary>
    public string SourcePath { get; }
}

/// <summary>
/// A kernel launch failed: an invalid configuration, or a kernel that cannot complete on a GPU (a barrier or warp
/// operation that not every thread reaches, lanes that disagree, <c>__trap()</c>).
/// </summary>
public sealed class EmulatorLaunchException : EmulatorException
{
    /// <summary>Creates the exception.</summary>
    public EmulatorLaunchException(string kernelName, string message) : base(message) => KernelName = kernelName;

    /// <summary>The kernel that failed.</summary>
    public string KernelName { get; }
}
