// A helper outside the model is ordinary C# the generator cannot see into.
using Kiln;
namespace Corpus;

public static class Activations
{
    public static Tensor Swish(Tensor x) => x * Ops.Sigmoid(x);
}

[Model]
public partial class Regressor(int dim = 4)
{
    Linear fc = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => fc.Forward(Activations.Swish(x)); // expect: KILN0102 "Activations.Swish"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
