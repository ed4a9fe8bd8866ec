using System;
using System.Collections.Generic;

namespace Kiln.Benchmarks;

/// <summary>Entry point: <c>Kiln.Benchmarks [subcommand] [options]</c>; each subcommand owns its own file.</summary>
public static class Program
{
    private static readonly Dictionary<string, (string Summary, Func<string[], int> Run)> Commands = new(StringComparer.OrdinalIgnoreCase)
    {
        ["gemm"] = ("CPU SGEMM throughput against the measured FMA peak and OpenBLAS", GemmBench.Run),
        ["step"] = ("Training-step time of the spirals example model against the measured FMA peak", StepBench.Run),
        ["gpu-check"] = ("Every generated kernel and GEMM on the GPU against the CPU program, and an end-to-end loss curve (--device=cuda:N|emulator)", GpuCheck.Run),
        ["attention"] = ("One causal self-attention layer, fused op vs composition: step time and activation memory at several lengths", AttentionBench.Run),
        ["gpt"] = ("GPT-shaped model on Tiny Shakespeare: tokens/s, TFLOP/s and MFU (--device=cpu|cuda --precision=f32|bf16|f16 --profile)", GptBench.Run),
    };

    public static int Main(string[] args)
    {
        string name = args.Length > 0 && !args[0].StartsWith('-') ? args[0] : "gemm";
        string[] rest = args.Length > 0 && !args[0].StartsWith('-') ? args[1..] : args;
        if (name is "help" or "--help" or "-h" || !Commands.TryGetValue(name, out var command))
        {
            Console.Error.WriteLine(name is "help" or "--help" or "-h" ? "usage: Kiln.Benchmarks [subcommand] [options]" : $"unknown subcommand '{name}'");
            foreach (var (key, value) in Commands)
            {
                Console.Error.WriteLine($"  {key,-8} {value.Summary}");
            }
            return name is "help" or "--help" or "-h" ? 0 : 2;
        }
        try
        {
            return command.Run(rest);
        }
        catch (Kiln.Runtime.Cuda.GpuUnavailableException e)
        {
            // A missing driver or GPU is a message for the user, not a stack trace.
            Console.Error.WriteLine(e.Message);
            return 2;
        }
    }
}
