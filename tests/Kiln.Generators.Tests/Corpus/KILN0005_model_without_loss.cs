// Nothing tells Kiln what to minimise.
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor(int dim = 4) // expect: KILN0005 "no [Loss] method"
{
    Linear fc = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => fc.Forward(x);
}
