// A while loop has no trip count known at build time.
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor(int dim = 4, int depth = 2)
{
    Linear fc = new(dim, dim);
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x)
    {
        int i = 0;
        while (i < depth) // expect: KILN0100 "while"
        {
            x = Ops.Tanh(fc.Forward(x));
            i = i + 1;
        }
        return head.Forward(x);
    }
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
