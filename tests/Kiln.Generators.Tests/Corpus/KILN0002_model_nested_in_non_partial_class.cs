// The model is partial but its containing class is not.
using Kiln;
namespace Corpus;

public static class Models
{
    [Model]
    public partial class Regressor(int dim = 4) // expect: KILN0002 "Models"
    {
        Linear fc = new(dim, 1);
        public Tensor Forward([Shape("B", "dim")] Tensor x) => fc.Forward(x);
        [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
    }
}
