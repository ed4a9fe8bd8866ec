using System.Linq;
using Kiln.Runtime;

namespace Kiln.Generators.Tests;

public class SmokeTests
{
    private const string Mlp = """
        using Kiln;
        namespace M;
        [Model]
        public partial class Mlp(int dim = 3, int hidden = 8)
        {
            Linear fc1 = new(dim, hidden), fc2 = new(hidden, 1);
            public Tensor Forward([Shape("B", "dim")] Tensor x) => fc2.Forward(Ops.Tanh(fc1.Forward(x)));
            [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
        }
        """;

    [Fact]
    public void Generated_program_compiles_and_runs_a_train_step()
    {
        var asm = GeneratorHarness.Build(Mlp);
        var program = GeneratorHarness.CreateProgram(asm, "M.Mlp");
        program.InitParameters(1);
        var batch = new Batch(("x", TensorData.Float(new float[12], 4, 3)), ("y", TensorData.Float(new float[4], 4, 1)));
        float loss = program.TrainStep(batch, default);
        Assert.True(float.IsFinite(loss));
        Assert.Equal(3 * 8 + 8 + 8 + 1, program.Params.Length);
    }
}
