// Ping holds a Pong, which holds a Ping.
using Kiln;
namespace Corpus;

[Module]
public partial class Ping(int dim)
{
    Pong next = new(dim);
    public Tensor Forward(Tensor x) => next.Forward(x);
}

[Module]
public partial class Pong(int dim)
{
    Ping back = new(dim); // expect: KILN0014 "Ping → Pong → Ping"
    public Tensor Forward(Tensor x) => back.Forward(x);
}

[Model]
public partial class Regressor(int dim = 4)
{
    Ping ping = new(dim);
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => head.Forward(ping.Forward(x));
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
