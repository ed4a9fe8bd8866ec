// Module.Repeat needs an expression lambda.
using Kiln;
namespace Corpus;

[Model]
public partial class Deep(int dim = 4, int depth = 2)
{
    Linear[] layers = Module.Repeat(depth, i => { return new Linear(dim, dim); }); // expect: KILN0101 "lambda"
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x)
    {
        foreach (var l in layers) x = l.Forward(x);
        return head.Forward(x);
    }
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
