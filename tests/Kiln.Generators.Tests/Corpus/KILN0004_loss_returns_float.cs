// The loss must be a Tensor, not a C# number.
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor(int dim = 4)
{
    Linear fc = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => fc.Forward(x);
    [Loss] public float Loss([Shape("B", "dim")] Tensor x) => 0f; // expect: KILN0004 "float"
}
