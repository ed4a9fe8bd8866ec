using System;
using System.Collections.Generic;
using System.IO;
using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace Kiln.Build.Tasks.Kernels
{
    /// <summary>A model's CUDA translation unit as the generator stored it, and the type that holds it.</summary>
    internal sealed class KernelSource
    {
        public KernelSource(string typeName, string source) { TypeName = typeName; Source = source; }

        /// <summary>The declaring type's full name (namespace, containing types joined with '.').</summary>
        public string TypeName { get; }

        /// <summary>The CUDA source, exactly the constant's value.</summary>
        public string Source { get; }
    }

    /// <summary>
    /// Reads every <c>const string KilnCudaSource</c> field from an assembly's metadata tables with
    /// System.Reflection.Metadata: nothing is loaded or executed, and the file is not kept open.
    /// </summary>
    internal static class KernelSourceReader
    {
        /// <summary>The name of the constant the generator emits into each <c>[Model]</c> class.</summary>
        public const string FieldName = "KilnCudaSource";

        /// <exception cref="IOException">The file cannot be read.</exception>
        /// <exception cref="BadImageFormatException">The file is not a .NET assembly.</exception>
        public static List<KernelSource> Read(string assemblyPath) => Read(assemblyPath, FieldName);

        /// <summary>Every <c>const string</c> field named <paramref name="fieldName"/> (the generator's constants: <c>KilnCudaSource</c>, <c>KilnPlanReport</c>, <c>KilnPlanJson</c>).</summary>
        /// <exception cref="IOException">The file cannot be read.</exception>
        /// <exception cref="BadImageFormatException">The file is not a .NET assembly.</exception>
        public static List<KernelSource> Read(string assemblyPath, string fieldName)
        {
            var result = new List<KernelSource>();
            using (var stream = new FileStream(assemblyPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
            using (var pe = new PEReader(stream, PEStreamOptions.PrefetchEntireImage))
            {
                if (!pe.HasMetadata) throw new BadImageFormatException("the file has no .NET metadata", assemblyPath);
                var md = pe.GetMetadataReader();
                foreach (var handle in md.FieldDefinitions)
                {
                    var field = md.GetFieldDefinition(handle);
                    if ((field.Attributes & FieldAttributes.Literal) == 0 || !md.StringComparer.Equals(field.Name, fieldName)) continue;
                    var constantHandle = field.GetDefaultValue();
                    if (constantHandle.IsNil) continue;
                    var constant = md.GetConstant(constantHandle);
                    if (constant.TypeCode != ConstantTypeCode.String || constant.Value.IsNil) continue;
                    var blob = md.GetBlobReader(constant.Value);
                    result.Add(new KernelSource(TypeName(md, field.GetDeclaringType()), blob.ReadUTF16(blob.Length)));
                }
            }
            return result;
        }

        private static string TypeName(MetadataReader md, TypeDefinitionHandle handle)
        {
            var type = md.GetTypeDefinition(handle);
            string name = md.GetString(type.Name);
            var outer = type.GetDeclaringType();
            if (!outer.IsNil) return TypeName(md, outer) + "." + name;
            string ns = md.GetString(type.Namespace);
            return ns.Length == 0 ? name : ns + "." + name;
        }
    }
}
