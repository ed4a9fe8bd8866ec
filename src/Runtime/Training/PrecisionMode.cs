namespace Kiln;

/// <summary>
/// How a program stores the tensors its precision policy marks low precision (matmul operands and most
/// activations); values are always computed in fp32, and parameters, gradients and optimizer state stay fp32.
/// </summary>
public enum PrecisionMode
{
    /// <summary>The device's default: bf16 on a GPU, fp32 on the CPU.</summary>
    Auto,
    /// <summary>Everything fp32.</summary>
    Float32,
    /// <summary>bfloat16 storage (8-bit mantissa, fp32 range): no loss scaling needed.</summary>
    BFloat16,
    /// <summary>IEEE half storage (11-bit mantissa, range ±65504): trained with dynamic loss scaling.</summary>
    Float16,
}
