// An embedding looks up integer ids, not floats.
// allow: CS1503
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4, int vocab = 10)
{
    Embedding emb = new(vocab, dim);
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => head.Forward(Ops.Mean(emb.Forward(x), 1)); // expect: KILN1007 "integer ids"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
