using System;
using System.Runtime.InteropServices;
using Kiln.Runtime.Cuda;

namespace Kiln.Runtime.Tests.Emulator;

/// <summary>Typed uploads and downloads for tests that drive an <see cref="IGpu"/>.</summary>
internal static class DeviceArrays
{
    /// <summary>Allocates device memory holding <paramref name="values"/>.</summary>
    public static ulong Upload<T>(this IGpu gpu, ReadOnlySpan<T> values) where T : unmanaged
    {
        ulong p = gpu.Allocate(Math.Max(1, values.Length) * Marshal.SizeOf<T>());
        gpu.CopyToDevice(p, MemoryMarshal.AsBytes(values));
        return p;
    }

    /// <summary>Allocates device memory holding <paramref name="values"/>.</summary>
    public static ulong Upload<T>(this IGpu gpu, T[] values) where T : unmanaged => gpu.Upload((ReadOnlySpan<T>)values);

    /// <summary>Allocates <paramref name="count"/> zeroed elements.</summary>
    public static ulong Zeros<T>(this IGpu gpu, long count) where T : unmanaged
    {
        long bytes = Math.Max(1, count) * Marshal.SizeOf<T>();
        ulong p = gpu.Allocate(bytes);
        gpu.Fill(p, 0, bytes);
        return p;
    }

    /// <summary>Copies <paramref name="count"/> elements back to the host.</summary>
    public static T[] Download<T>(this IGpu gpu, ulong pointer, long count) where T : unmanaged
    {
        var values = new T[count];
        gpu.CopyToHost(MemoryMarshal.AsBytes(values.AsSpan()), pointer);
        return values;
    }
}
