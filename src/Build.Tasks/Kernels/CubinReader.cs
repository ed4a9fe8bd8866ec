using System;
using System.Collections.Generic;
using System.Text;

namespace Kiln.Build.Tasks.Kernels
{
    /// <summary>What a CUBIN says about one kernel; null where the file does not say.</summary>
    internal sealed class KernelResources
    {
        public KernelResources(string name, int? registers, long? staticSharedBytes, long? localBytes)
        {
            Name = name; Registers = registers; StaticSharedBytes = staticSharedBytes; LocalBytes = localBytes;
        }

        public string Name { get; }
        public int? Registers { get; }
        public long? StaticSharedBytes { get; }
        public long? LocalBytes { get; }
    }

    /// <summary>
    /// Reads per-kernel resources from a CUBIN (a 64-bit little-endian ELF): each kernel's code is a section
    /// <c>.text.&lt;kernel&gt;</c> whose <c>sh_info</c> carries the register count in its top byte, static shared memory is
    /// the size of <c>.nv.shared.&lt;kernel&gt;</c>, and per-thread local memory (stack frame and spills) the size of
    /// <c>.nv.local.&lt;kernel&gt;</c> when present. A kernel without those sections uses none.
    /// </summary>
    internal static class CubinReader
    {
        /// <exception cref="FormatException">Not a 64-bit little-endian ELF file.</exception>
        public static List<KernelResources> Read(byte[] elf)
        {
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
                throw new FormatException("not an ELF file");
            if (elf[4] != 2 || elf[5] != 1) throw new FormatException("not a 64-bit little-endian ELF file");
            long shoff = (long)U64(elf, 0x28);
            int shentsize = U16(elf, 0x3A), shnum = U16(elf, 0x3C), shstrndx = U16(elf, 0x3E);
            if (shoff <= 0 || shentsize < 64 || shoff + (long)shentsize * shnum > elf.Length || shstrndx >= shnum)
                throw new FormatException("the section header table lies outside the file");

            long strOffset = (long)U64(elf, Header(shoff, shentsize, shstrndx) + 24);
            var text = new List<(string Kernel, uint Info)>();
            var shared = new Dictionary<string, long>(StringComparer.Ordinal);
            var local = new Dictionary<string, long>(StringComparer.Ordinal);
            for (int i = 0; i < shnum; i++)
            {
                long h = Header(shoff, shentsize, i);
                string name = CString(elf, strOffset + U32(elf, h));
                uint info = U32(elf, h + 44);
                long size = (long)U64(elf, h + 32);
                if (name.StartsWith(".text.", StringComparison.Ordinal)) text.Add((name.Substring(6), info));
                else if (name.StartsWith(".nv.shared.", StringComparison.Ordinal)) shared[name.Substring(11)] = size;
                else if (name.StartsWith(".nv.local.", StringComparison.Ordinal)) local[name.Substring(10)] = size;
            }
            var result = new List<KernelResources>();
            foreach (var (kernel, info) in text)
                result.Add(new KernelResources(kernel, (int)(info >> 24),
                    shared.TryGetValue(kernel, out long s) ? s : 0, local.TryGetValue(kernel, out long l) ? l : 0));
            result.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
            return result;
        }

        private static long Header(long shoff, int shentsize, int index) => shoff + (long)shentsize * index;

        private static int U16(byte[] b, long o) => b[o] | b[o + 1] << 8;

        private static uint U32(byte[] b, long o) => (uint)(b[o] | b[o + 1] << 8 | b[o + 2] << 16 | b[o + 3] << 24);

        private static ulong U64(byte[] b, long o) => U32(b, o) | (ulong)U32(b, o + 4) << 32;

        private static string CString(byte[] b, long o)
        {
            if (o < 0 || o >= b.Length) return "";
            long end = o;
            while (end < b.Length && b[end] != 0) end++;
            return Encoding.ASCII.GetString(b, (int)o, (int)(end - o));
        }
    }
}
