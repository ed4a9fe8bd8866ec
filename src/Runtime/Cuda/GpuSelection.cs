using System;

namespace Kiln.Runtime.Cuda;

/// <summary>Turns a device string into the GPU a generated program runs on (null for the CPU).</summary>
public static class GpuSelection
{
    /// <summary>
    /// The GPU <paramref name="device"/> names, or null when it names the CPU (or is <c>auto</c> and no GPU can be
    /// opened). <c>cuda</c>/<c>cuda:N</c> without a usable GPU throw with the reason.
    /// </summary>
    public static IGpu? Open(string device)
    {
        var name = DeviceName.Parse(device);
        return name.Kind switch
        {
            DeviceKind.Cpu => null,
            DeviceKind.Auto => null, // TEMPORARY until CudaGpu lands (this session)
            _ => throw new NotSupportedException("TEMPORARY: CudaGpu not merged yet"),
        };
    }
}
