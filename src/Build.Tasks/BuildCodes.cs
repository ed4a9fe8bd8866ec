using System.Collections.Generic;

namespace Kiln.Build.Tasks
{
    /// <summary>The codes of the messages the Kiln build task logs; each is documented in docs/diagnostics.md and never reused.</summary>
    public static class BuildCodes
    {
        /// <summary>NVRTC was not found; the kernels are left to the runtime (warning).</summary>
        public const string NvrtcNotFound = "KILNB001";

        /// <summary>NVRTC rejected a generated kernel (error at the C# line).</summary>
        public const string KernelCompileError = "KILNB002";

        /// <summary>NVRTC warned about a generated kernel (warning at the C# line).</summary>
        public const string KernelCompileWarning = "KILNB003";

        /// <summary>The built assembly could not be read for its kernels (error).</summary>
        public const string AssemblyUnreadable = "KILNB004";

        /// <summary>A KilnCudaArchitectures or KilnKernelPrecisions entry is invalid or unsupported (error).</summary>
        public const string InvalidTarget = "KILNB005";

        /// <summary>The build task failed in a way it does not expect (a Kiln bug; error).</summary>
        public const string InternalError = "KILNB006";

        /// <summary>Every code, in order.</summary>
        public static IReadOnlyList<string> All { get; } = new[] { NvrtcNotFound, KernelCompileError, KernelCompileWarning, AssemblyUnreadable, InvalidTarget, InternalError };
    }
}
