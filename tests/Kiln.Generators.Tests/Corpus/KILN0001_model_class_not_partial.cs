// A [Model] without 'partial': the generator has nowhere to put the program.
using Kiln;
namespace Corpus;

[Model]
public class Regressor(int dim = 4) // expect: KILN0001 "partial"
{
    Linear fc = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => fc.Forward(x);
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
