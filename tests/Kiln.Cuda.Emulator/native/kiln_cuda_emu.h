// Kiln CUDA host emulator: the CUDA built-ins that Kiln's emitted kernels use, for compiling a CUDA C translation
// unit as C++ with g++ (-DKILN_HOST_EMULATION -include kiln_cuda_emu.h) and running its kernels on the host with
// CUDA's execution semantics. The C# side (EmulatedGpu) appends one `__kiln_emu_call_NAME(void** args)` wrapper per
// kernel and launches through kiln_emu_launch at the end of this file.
//
// Execution model. Blocks run one after another on the calling OS thread. Inside a block every CUDA thread is a
// fiber with its own stack; a fiber runs until it finishes, reaches __syncthreads() or a warp operation. The
// scheduler releases a barrier when every thread of the block waits at it and a warp operation when every lane
// named in its mask waits at it, and reports (instead of hanging) a block in which no thread can proceed: a thread
// that exited while others wait at a barrier, a lane missing from a warp operation, lanes that disagree about the
// operation. Threads run in linear-id order between synchronisation points, so atomics and races are
// deterministic. The C# side serialises launches into one module, which is why plain statics hold the state.
//
// Not provided, so such code fails to compile: PTX asm, __activemask, cooperative groups, __half/__nv_bfloat16 and
// cuda_fp16.h, textures and surfaces, `extern __shared__` (use KILN_DYNAMIC_SHARED), clock()/clock64(), dynamic
// parallelism, <<<>>> launches. Not detected: waiting on a flag that another block writes (blocks run one after
// another, so it spins forever), data races (threads run in order, so a racy kernel gives one deterministic answer),
// out-of-bounds accesses (they hit host memory or crash the process), a thread stack over 64 KiB (a guard page
// faults; -DKILN_EMU_STACK_BYTES=N enlarges it). The fast-math intrinsics (__expf, …) compute the precise functions.
#pragma once

#include <cmath>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sys/mman.h>
#include <unistd.h>

#if !defined(__x86_64__) || defined(KILN_EMU_UCONTEXT)
#define KILN_EMU_USE_UCONTEXT 1
#include <ucontext.h>
#endif

// ── Qualifiers ──
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __constant__
// Blocks run one at a time and the launches of a module are serialised, so a static is exactly one block's
// shared memory. Static shared memory is not cleared between blocks (on a GPU it is undefined at block start).
#define __shared__ static
// Dynamic shared memory (the launch's sharedMemoryBytes). NVRTC's prelude spells it `extern __shared__ type name[]`;
// valid at namespace or function scope. Poisoned with 0xFF bytes (float NaN) at the start of every block.
#define KILN_DYNAMIC_SHARED(type, name) type* const name = reinterpret_cast<type*>(::kiln_emu::dynamic_shared_memory)
// __restrict__ is a GCC keyword already.

// ── Built-in types ──
struct uint3 { unsigned int x, y, z; };
struct dim3
{
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
};
struct alignas(8) float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) int2 { int x, y; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(8) uint2 { unsigned int x, y; };
struct alignas(16) uint4 { unsigned int x, y, z, w; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned int x, unsigned int y) { return {x, y}; }
inline uint4 make_uint4(unsigned int x, unsigned int y, unsigned int z, unsigned int w) { return {x, y, z, w}; }

namespace kiln_emu {

#ifndef KILN_EMU_STACK_BYTES
#define KILN_EMU_STACK_BYTES (64 * 1024)
#endif
#ifndef KILN_EMU_MAX_DYNAMIC_SHARED
#define KILN_EMU_MAX_DYNAMIC_SHARED (227 * 1024) // sm_90's largest opt-in per block
#endif

constexpr unsigned int MaxBlockThreads = 1024;

enum class State : unsigned char { Ready, Barrier, Warp, Done, Faulted };
enum class WarpOp : unsigned char { SyncWarp, ShflIdx, ShflUp, ShflDown, ShflXor, Ballot, Any, All };

inline const char* warp_op_name(WarpOp op)
{
    switch (op)
    {
        case WarpOp::SyncWarp: return "__syncwarp";
        case WarpOp::ShflIdx: return "__shfl_sync";
        case WarpOp::ShflUp: return "__shfl_up_sync";
        case WarpOp::ShflDown: return "__shfl_down_sync";
        case WarpOp::ShflXor: return "__shfl_xor_sync";
        case WarpOp::Ballot: return "__ballot_sync";
        case WarpOp::Any: return "__any_sync";
        case WarpOp::All: return "__all_sync";
    }
    return "?";
}

struct Fiber
{
    void* sp;                 // saved stack pointer while switched out
    uint3 tid;
    State state;
    WarpOp op;
    unsigned char value_bytes;
    bool started;
    int stack;                // index into the stack pool, -1 before start
    unsigned int mask;        // warp operation: lanes named
    unsigned int arg;         // srcLane, delta or laneMask
    int width;
    unsigned long long value; // this lane's operand (bits)
    unsigned long long result;
#ifdef KILN_EMU_USE_UCONTEXT
    ucontext_t context;
#endif
};

struct Launch
{
    void (*kernel)(void**);
    void** args;
    const char* name;
    uint3 block_idx;
    dim3 block_dim, grid_dim;
    unsigned int threads;
    Fiber* current;
    void* scheduler_sp;
#ifdef KILN_EMU_USE_UCONTEXT
    ucontext_t scheduler_context;
#endif
    char* error;
    int error_capacity;
    bool failed;
};

inline Launch launch;
inline Fiber fibers[MaxBlockThreads];
alignas(256) inline unsigned char dynamic_shared_memory[KILN_EMU_MAX_DYNAMIC_SHARED];

// ── Fiber stacks: allocated on first need, reused by every block and launch (a finished thread's stack goes to the
// next thread, so a kernel without barriers touches one stack). A guard page below each turns overflow into a fault.
struct StackPool
{
    char* base[MaxBlockThreads];
    int free_list[MaxBlockThreads];
    int allocated = 0, free_count = 0;

    static size_t page() { return (size_t)sysconf(_SC_PAGESIZE); }
    static size_t usable() { return ((size_t)KILN_EMU_STACK_BYTES + page() - 1) / page() * page(); }

    void reset() { free_count = 0; for (int i = allocated - 1; i >= 0; i--) free_list[free_count++] = i; }

    int acquire()
    {
        if (free_count > 0) return free_list[--free_count];
        if (allocated == (int)MaxBlockThreads) return -1;
        size_t guard = page();
        void* p = mmap(nullptr, usable() + guard, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return -1;
        mprotect(p, guard, PROT_NONE);
        base[allocated] = (char*)p + guard;
        return allocated++;
    }

    void release(int index) { free_list[free_count++] = index; }
    char* top(int index) { return base[index] + usable(); }
};
inline StackPool stacks;

inline void fail(const char* format, ...) __attribute__((format(printf, 1, 2)));
inline void fail(const char* format, ...)
{
    if (launch.failed) return;
    launch.failed = true;
    int used = snprintf(launch.error, (size_t)launch.error_capacity, "kernel %s, block (%u, %u, %u): ", launch.name,
                        launch.block_idx.x, launch.block_idx.y, launch.block_idx.z);
    if (used < 0 || used >= launch.error_capacity) return;
    va_list list;
    va_start(list, format);
    vsnprintf(launch.error + used, (size_t)(launch.error_capacity - used), format, list);
    va_end(list);
}

} // namespace kiln_emu

// ── Context switch ──
#ifndef KILN_EMU_USE_UCONTEXT
// Saves the callee-saved registers on the current stack, stores its pointer in *save and continues on `load`
// (a stack saved the same way, or a fresh one prepared by start_fiber). Caller-saved registers are the compiler's.
extern "C" void kiln_emu_switch(void** save, void* load) __attribute__((visibility("hidden")));
asm(R"(
    .text
    .p2align 4
    .hidden kiln_emu_switch
    .type kiln_emu_switch, @function
kiln_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size kiln_emu_switch, .-kiln_emu_switch
)");
#endif

namespace kiln_emu {

[[noreturn]] inline void fiber_main()
{
    launch.kernel(launch.args);
    Fiber* self = launch.current;
    self->state = State::Done;
#ifdef KILN_EMU_USE_UCONTEXT
    swapcontext(&self->context, &launch.scheduler_context);
#else
    kiln_emu_switch(&self->sp, launch.scheduler_sp);
#endif
    __builtin_unreachable(); // a finished fiber is never resumed
}

// Runs `f` until it finishes or blocks.
inline void resume(Fiber* f)
{
    if (!f->started)
    {
        f->stack = stacks.acquire();
        if (f->stack < 0) { fail("cannot allocate a %d-byte fiber stack for thread %u", KILN_EMU_STACK_BYTES, (unsigned int)(f - fibers)); f->state = State::Faulted; return; }
        f->started = true;
        char* top = stacks.top(f->stack);
#ifdef KILN_EMU_USE_UCONTEXT
        getcontext(&f->context);
        f->context.uc_stack.ss_sp = stacks.base[f->stack];
        f->context.uc_stack.ss_size = (size_t)(top - stacks.base[f->stack]);
        f->context.uc_link = nullptr;
        makecontext(&f->context, fiber_main, 0);
#else
        // The frame kiln_emu_switch pops: six callee-saved registers, then the "return address" (the entry), then a
        // fake return address of the entry, so the entry starts with rsp ≡ 8 (mod 16) as after a call.
        void** frame = (void**)top - 8;
        for (int i = 0; i < 6; i++) frame[i] = nullptr;
        frame[6] = (void*)&fiber_main;
        frame[7] = nullptr;
        f->sp = frame;
#endif
    }
    launch.current = f;
#ifdef KILN_EMU_USE_UCONTEXT
    swapcontext(&launch.scheduler_context, &f->context);
#else
    kiln_emu_switch(&launch.scheduler_sp, f->sp);
#endif
}

// Called on a fiber: hands control back to the scheduler until it is released.
inline void block_current(State why)
{
    Fiber* self = launch.current;
    self->state = why;
#ifdef KILN_EMU_USE_UCONTEXT
    swapcontext(&self->context, &launch.scheduler_context);
#else
    kiln_emu_switch(&self->sp, launch.scheduler_sp);
#endif
}

inline unsigned int lane_count(unsigned int warp)
{
    unsigned int first = warp * 32u;
    return launch.threads - first < 32u ? launch.threads - first : 32u;
}

// "0-31, 40, 64-95": thread or lane numbers whose flag is set.
inline void format_set(char* out, size_t capacity, const bool* set, unsigned int count, unsigned int offset)
{
    size_t used = 0;
    out[0] = 0;
    for (unsigned int i = 0; i < count && used + 24 < capacity; i++)
    {
        if (!set[i]) continue;
        unsigned int j = i;
        while (j + 1 < count && set[j + 1]) j++;
        used += (size_t)snprintf(out + used, capacity - used, used ? ", %u" : "%u", i + offset);
        if (j > i) used += (size_t)snprintf(out + used, capacity - used, "-%u", j + offset);
        i = j;
    }
    if (used == 0) snprintf(out, capacity, "none");
}

inline void format_mask(char* out, size_t capacity, unsigned int mask)
{
    bool set[32];
    for (int i = 0; i < 32; i++) set[i] = (mask >> i) & 1u;
    format_set(out, capacity, set, 32, 0);
}

// The lane a warp operation of lane `lane` reads, or `lane` itself when CUDA gives a lane its own value back.
inline unsigned int source_lane(const Fiber& f, unsigned int lane)
{
    unsigned int width = (unsigned int)f.width, segment = lane & ~(width - 1u);
    switch (f.op)
    {
        case WarpOp::ShflIdx: return segment + (f.arg & (width - 1u));
        case WarpOp::ShflUp: return f.arg > lane - segment ? lane : lane - f.arg;
        case WarpOp::ShflDown: return f.arg >= segment + width - lane ? lane : lane + f.arg;
        case WarpOp::ShflXor: { unsigned int s = lane ^ f.arg; return s >= segment && s < segment + width ? s : lane; }
        default: return lane;
    }
}

// Releases every group of lanes of `warp` whose warp operation all named lanes have reached. Returns whether it
// released one; reports a fault (launch.failed) when a group can never complete.
inline bool release_warp(unsigned int warp)
{
    Fiber* lanes = fibers + warp * 32u;
    unsigned int count = lane_count(warp), existing = count == 32u ? 0xffffffffu : (1u << count) - 1u, handled = 0;
    bool released = false;
    char a[192], b[192];
    for (unsigned int l = 0; l < count; l++)
    {
        const Fiber& leader = lanes[l];
        if (leader.state != State::Warp || ((handled >> l) & 1u)) continue;
        unsigned int mask = leader.mask;
        const char* op = warp_op_name(leader.op);
        if (!((mask >> l) & 1u))
        {
            fail("thread %u calls %s with mask 0x%08x, which does not name its own lane %u", warp * 32u + l, op, mask, l);
            return false;
        }
        if (mask & ~existing)
        {
            format_mask(a, sizeof a, mask & ~existing);
            fail("warp %u calls %s with mask 0x%08x, which names lanes %s that the block (%u threads) does not have; "
                 "launch a multiple of 32 threads or pass the mask of the lanes that exist", warp, op, mask, a, launch.threads);
            return false;
        }
        handled |= mask;
        bool ready = true;
        bool exited[32] = {}, waiting[32] = {};
        bool any_exited = false;
        for (unsigned int j = 0; j < 32; j++)
        {
            if (!((mask >> j) & 1u)) continue;
            const Fiber& other = lanes[j];
            if (other.state == State::Done) { exited[j] = any_exited = true; continue; }
            if (other.state != State::Warp) { ready = false; continue; }
            waiting[j] = true;
            if (other.op != leader.op || other.mask != mask || other.value_bytes != leader.value_bytes || other.width != leader.width)
            {
                fail("warp %u: lane %u calls %s(mask 0x%08x, %u-byte value, width %d) while lane %u calls %s(mask 0x%08x, %u-byte value, width %d); "
                     "all lanes named in the mask must execute the same warp operation",
                     warp, l, op, mask, leader.value_bytes, leader.width, j, warp_op_name(other.op), other.mask, other.value_bytes, other.width);
                return false;
            }
        }
        if (any_exited)
        {
            format_set(a, sizeof a, waiting, 32, 0);
            format_set(b, sizeof b, exited, 32, 0);
            fail("warp %u (threads %u-%u): lanes %s wait at %s(mask 0x%08x) but lanes %s named in the mask have exited; "
                 "every lane named in the mask must reach the warp operation",
                 warp, warp * 32u, warp * 32u + count - 1u, a, op, mask, b);
            return false;
        }
        if (!ready) continue;
        unsigned int ballot = 0;
        for (unsigned int j = 0; j < 32; j++)
            if (((mask >> j) & 1u) && lanes[j].value != 0) ballot |= 1u << j;
        for (unsigned int j = 0; j < 32; j++)
        {
            if (!((mask >> j) & 1u)) continue;
            Fiber& f = lanes[j];
            switch (f.op)
            {
                case WarpOp::SyncWarp: break;
                case WarpOp::Ballot: f.result = ballot; break;
                case WarpOp::Any: f.result = ballot != 0; break;
                case WarpOp::All: f.result = ballot == mask; break;
                default:
                {
                    unsigned int s = source_lane(f, j);
                    if (!((mask >> s) & 1u))
                    {
                        fail("warp %u: lane %u reads lane %u with %s, but the mask 0x%08x does not name lane %u (undefined on a GPU)",
                             warp, j, s, op, mask, s);
                        return false;
                    }
                    f.result = lanes[s].value;
                }
            }
        }
        for (unsigned int j = 0; j < 32; j++)
            if ((mask >> j) & 1u) lanes[j].state = State::Ready;
        released = true;
    }
    return released;
}

// Explains a block in which no thread can run: what every unfinished thread waits for.
inline void report_stuck()
{
    static bool at_barrier[MaxBlockThreads], at_warp[MaxBlockThreads], done[MaxBlockThreads];
    bool any_done = false, any_warp = false;
    for (unsigned int t = 0; t < launch.threads; t++)
    {
        at_barrier[t] = fibers[t].state == State::Barrier;
        at_warp[t] = fibers[t].state == State::Warp;
        done[t] = fibers[t].state == State::Done;
        any_done |= done[t];
        any_warp |= at_warp[t];
    }
    static char a[512], b[512], c[512];
    format_set(a, sizeof a, at_barrier, launch.threads, 0);
    format_set(b, sizeof b, done, launch.threads, 0);
    if (!any_warp && any_done)
    {
        fail("threads %s wait at __syncthreads() but threads %s have exited; every thread of a block must reach the "
             "same barrier (a barrier under a thread-dependent condition hangs or is undefined on a GPU)", a, b);
        return;
    }
    format_set(c, sizeof c, at_warp, launch.threads, 0);
    fail("no thread can proceed: threads %s wait at __syncthreads(); threads %s wait at a warp operation for lanes that "
         "wait at the barrier%s%s%s", a, c, any_done ? "; threads " : "", any_done ? b : "", any_done ? " have exited" : "");
}

// Runs one block to completion. Returns false when the launch failed.
inline bool run_block()
{
    unsigned int n = launch.threads;
    stacks.reset();
    for (unsigned int t = 0; t < n; t++)
    {
        Fiber& f = fibers[t];
        f.state = State::Ready;
        f.started = false;
        f.stack = -1;
        f.tid.x = t % launch.block_dim.x;
        f.tid.y = (t / launch.block_dim.x) % launch.block_dim.y;
        f.tid.z = t / (launch.block_dim.x * launch.block_dim.y);
    }
    for (;;)
    {
        for (unsigned int t = 0; t < n; t++)
        {
            Fiber& f = fibers[t];
            if (f.state != State::Ready) continue;
            resume(&f);
            if (launch.failed) return false;
            if (f.state == State::Done) stacks.release(f.stack);
        }
        bool released = false, all_done = true, all_barrier = true;
        for (unsigned int w = 0; w * 32u < n; w++)
        {
            released |= release_warp(w);
            if (launch.failed) return false;
        }
        if (released) continue;
        for (unsigned int t = 0; t < n; t++)
        {
            all_done &= fibers[t].state == State::Done;
            all_barrier &= fibers[t].state == State::Barrier;
        }
        if (all_done) return true;
        if (all_barrier)
        {
            unsigned long long count = 0;
            for (unsigned int t = 0; t < n; t++) count += fibers[t].value != 0;
            for (unsigned int t = 0; t < n; t++) { fibers[t].result = count; fibers[t].state = State::Ready; }
            continue;
        }
        report_stuck();
        return false;
    }
}

inline unsigned int linear_thread() { return (unsigned int)(launch.current - fibers); }

inline unsigned long long barrier(int predicate)
{
    launch.current->value = predicate != 0;
    block_current(State::Barrier);
    return launch.current->result;
}

template <class T>
inline T warp_op(WarpOp op, unsigned int mask, T value, unsigned int arg, int width)
{
    static_assert(sizeof(T) == 4 || sizeof(T) == 8, "warp shuffles move 4- or 8-byte values");
    Fiber* self = launch.current;
    if (width < 1 || width > 32 || (width & (width - 1)) != 0)
    {
        fail("thread %u calls %s with width %d; the width must be a power of two from 1 to 32", linear_thread(), warp_op_name(op), width);
        block_current(State::Faulted);
    }
    unsigned long long bits = 0;
    std::memcpy(&bits, &value, sizeof(T));
    self->op = op;
    self->mask = mask;
    self->value = bits;
    self->value_bytes = (unsigned char)sizeof(T);
    self->arg = arg;
    self->width = width;
    block_current(State::Warp);
    T result;
    std::memcpy(&result, &launch.current->result, sizeof(T));
    return result;
}

} // namespace kiln_emu

// ── Built-in variables (read-only) ──
#define threadIdx (static_cast<const ::uint3&>(::kiln_emu::launch.current->tid))
#define blockIdx (static_cast<const ::uint3&>(::kiln_emu::launch.block_idx))
#define blockDim (static_cast<const ::dim3&>(::kiln_emu::launch.block_dim))
#define gridDim (static_cast<const ::dim3&>(::kiln_emu::launch.grid_dim))
static constexpr int warpSize = 32;

// ── Synchronisation ──
inline void __syncthreads() { ::kiln_emu::barrier(1); }
inline int __syncthreads_count(int predicate) { return (int)::kiln_emu::barrier(predicate); }
inline int __syncthreads_and(int predicate) { return ::kiln_emu::barrier(predicate) == ::kiln_emu::launch.threads; }
inline int __syncthreads_or(int predicate) { return ::kiln_emu::barrier(predicate) != 0; }
inline void __syncwarp(unsigned int mask = 0xffffffffu) { ::kiln_emu::warp_op(::kiln_emu::WarpOp::SyncWarp, mask, 0u, 0u, 32); }
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_system() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
[[noreturn]] inline void __trap()
{
    ::kiln_emu::fail("thread %u executed __trap()", ::kiln_emu::linear_thread());
    ::kiln_emu::block_current(::kiln_emu::State::Faulted);
    __builtin_unreachable(); // a faulted fiber is never resumed
}

// ── Warp shuffles and votes (width 32 unless given) ──
template <class T> inline T __shfl_sync(unsigned int mask, T v, int srcLane, int width = 32)
{ return ::kiln_emu::warp_op(::kiln_emu::WarpOp::ShflIdx, mask, v, (unsigned int)srcLane, width); }
template <class T> inline T __shfl_up_sync(unsigned int mask, T v, unsigned int delta, int width = 32)
{ return ::kiln_emu::warp_op(::kiln_emu::WarpOp::ShflUp, mask, v, delta, width); }
template <class T> inline T __shfl_down_sync(unsigned int mask, T v, unsigned int delta, int width = 32)
{ return ::kiln_emu::warp_op(::kiln_emu::WarpOp::ShflDown, mask, v, delta, width); }
template <class T> inline T __shfl_xor_sync(unsigned int mask, T v, int laneMask, int width = 32)
{ return ::kiln_emu::warp_op(::kiln_emu::WarpOp::ShflXor, mask, v, (unsigned int)laneMask, width); }
inline unsigned int __ballot_sync(unsigned int mask, int predicate)
{ return (unsigned int)::kiln_emu::warp_op(::kiln_emu::WarpOp::Ballot, mask, (unsigned int)(predicate != 0), 0u, 32); }
inline int __any_sync(unsigned int mask, int predicate)
{ return (int)::kiln_emu::warp_op(::kiln_emu::WarpOp::Any, mask, (unsigned int)(predicate != 0), 0u, 32); }
inline int __all_sync(unsigned int mask, int predicate)
{ return (int)::kiln_emu::warp_op(::kiln_emu::WarpOp::All, mask, (unsigned int)(predicate != 0), 0u, 32); }

// ── Atomics: threads run one at a time, so a plain read-modify-write is atomic; each returns the old value ──
#define KILN_EMU_ATOMIC(name, T, expr) inline T name(T* address, T val) { T old = *address; *address = (expr); return old; }
KILN_EMU_ATOMIC(atomicAdd, float, old + val)
KILN_EMU_ATOMIC(atomicAdd, double, old + val)
KILN_EMU_ATOMIC(atomicAdd, int, (int)((unsigned int)old + (unsigned int)val))
KILN_EMU_ATOMIC(atomicAdd, unsigned int, old + val)
KILN_EMU_ATOMIC(atomicAdd, unsigned long long, old + val)
KILN_EMU_ATOMIC(atomicSub, int, (int)((unsigned int)old - (unsigned int)val))
KILN_EMU_ATOMIC(atomicSub, unsigned int, old - val)
KILN_EMU_ATOMIC(atomicMax, int, old > val ? old : val)
KILN_EMU_ATOMIC(atomicMax, unsigned int, old > val ? old : val)
KILN_EMU_ATOMIC(atomicMax, long long, old > val ? old : val)
KILN_EMU_ATOMIC(atomicMax, unsigned long long, old > val ? old : val)
KILN_EMU_ATOMIC(atomicMin, int, old < val ? old : val)
KILN_EMU_ATOMIC(atomicMin, unsigned int, old < val ? old : val)
KILN_EMU_ATOMIC(atomicMin, long long, old < val ? old : val)
KILN_EMU_ATOMIC(atomicMin, unsigned long long, old < val ? old : val)
KILN_EMU_ATOMIC(atomicExch, int, val)
KILN_EMU_ATOMIC(atomicExch, unsigned int, val)
KILN_EMU_ATOMIC(atomicExch, unsigned long long, val)
KILN_EMU_ATOMIC(atomicExch, float, val)
KILN_EMU_ATOMIC(atomicAnd, int, old & val)
KILN_EMU_ATOMIC(atomicAnd, unsigned int, old & val)
KILN_EMU_ATOMIC(atomicOr, int, old | val)
KILN_EMU_ATOMIC(atomicOr, unsigned int, old | val)
KILN_EMU_ATOMIC(atomicXor, int, old ^ val)
KILN_EMU_ATOMIC(atomicXor, unsigned int, old ^ val)
#undef KILN_EMU_ATOMIC
template <class T> inline T kiln_emu_atomic_cas(T* address, T compare, T val) { T old = *address; if (old == compare) *address = val; return old; }
inline int atomicCAS(int* a, int c, int v) { return kiln_emu_atomic_cas(a, c, v); }
inline unsigned int atomicCAS(unsigned int* a, unsigned int c, unsigned int v) { return kiln_emu_atomic_cas(a, c, v); }
inline unsigned long long atomicCAS(unsigned long long* a, unsigned long long c, unsigned long long v) { return kiln_emu_atomic_cas(a, c, v); }

// ── Reinterpretation and integer intrinsics ──
template <class To, class From> inline To kiln_emu_bits(From v) { static_assert(sizeof(To) == sizeof(From), "same size"); To r; std::memcpy(&r, &v, sizeof r); return r; }
inline float __int_as_float(int v) { return kiln_emu_bits<float>(v); }
inline int __float_as_int(float v) { return kiln_emu_bits<int>(v); }
inline float __uint_as_float(unsigned int v) { return kiln_emu_bits<float>(v); }
inline unsigned int __float_as_uint(float v) { return kiln_emu_bits<unsigned int>(v); }
inline double __longlong_as_double(long long v) { return kiln_emu_bits<double>(v); }
inline long long __double_as_longlong(double v) { return kiln_emu_bits<long long>(v); }
inline unsigned int __umulhi(unsigned int a, unsigned int b) { return (unsigned int)(((unsigned long long)a * b) >> 32); }
inline int __mulhi(int a, int b) { return (int)(((long long)a * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) { return (unsigned long long)(((unsigned __int128)a * b) >> 64); }
inline long long __mul64hi(long long a, long long b) { return (long long)(((__int128)a * b) >> 64); }
inline int __popc(unsigned int v) { return __builtin_popcount(v); }
inline int __popcll(unsigned long long v) { return __builtin_popcountll(v); }
inline int __clz(int v) { return v == 0 ? 32 : __builtin_clz((unsigned int)v); }
inline int __clzll(long long v) { return v == 0 ? 64 : __builtin_clzll((unsigned long long)v); }
inline int __ffs(int v) { return __builtin_ffs(v); }
inline int __ffsll(long long v) { return __builtin_ffsll(v); }
inline unsigned int __brev(unsigned int v) { v = ((v >> 1) & 0x55555555u) | ((v & 0x55555555u) << 1); v = ((v >> 2) & 0x33333333u) | ((v & 0x33333333u) << 2); v = ((v >> 4) & 0x0f0f0f0fu) | ((v & 0x0f0f0f0fu) << 4); return __builtin_bswap32(v); }
template <class T> inline T __ldg(const T* p) { return *p; }

// ── Float intrinsics: the fast-math forms compute the precise function (the CPU backend's numbers) ──
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __saturatef(float x) { return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f; } // NaN → 0
inline int __float2int_rz(float x) { return (int)x; }
inline int __float2int_rn(float x) { return (int)nearbyintf(x); }
inline int __float2int_rd(float x) { return (int)floorf(x); }
inline int __float2int_ru(float x) { return (int)ceilf(x); }
inline float __int2float_rn(int x) { return (float)x; }

// ── min/max of integers and floats (CUDA's overloads of the same type) ──
#define KILN_EMU_MINMAX(T) inline T min(T a, T b) { return a < b ? a : b; } inline T max(T a, T b) { return a > b ? a : b; }
KILN_EMU_MINMAX(int)
KILN_EMU_MINMAX(unsigned int)
KILN_EMU_MINMAX(long)
KILN_EMU_MINMAX(unsigned long)
KILN_EMU_MINMAX(long long)
KILN_EMU_MINMAX(unsigned long long)
#undef KILN_EMU_MINMAX
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }

// ── Launch ──
// Runs `kernel` (a __kiln_emu_call_NAME wrapper) on the grid. Returns 0, or 1 with a message in `error` for an
// invalid configuration or a kernel that cannot complete (see the file comment).
extern "C" __attribute__((visibility("default"))) int kiln_emu_launch(
    void (*kernel)(void**), const char* name, unsigned int gx, unsigned int gy, unsigned int gz,
    unsigned int bx, unsigned int by, unsigned int bz, unsigned long long shared_bytes, void** args, char* error, int error_capacity)
{
    using namespace kiln_emu;
    launch = Launch{};
    launch.kernel = kernel;
    launch.args = args;
    launch.name = name;
    launch.grid_dim = dim3(gx, gy, gz);
    launch.block_dim = dim3(bx, by, bz);
    launch.error = error;
    launch.error_capacity = error_capacity;
    unsigned long long threads = (unsigned long long)bx * by * bz;
    if (gx == 0 || gy == 0 || gz == 0 || threads == 0 || threads > MaxBlockThreads || bz > 64 || gx > 0x7fffffffu || gy > 65535u || gz > 65535u)
    {
        fail("invalid launch configuration: grid (%u, %u, %u), block (%u, %u, %u); a block has 1 to %u threads (z at most 64) "
             "and a grid 1 to 2^31-1 blocks in x, 65535 in y and z", gx, gy, gz, bx, by, bz, MaxBlockThreads);
        return 1;
    }
    if (shared_bytes > (unsigned long long)KILN_EMU_MAX_DYNAMIC_SHARED)
    {
        fail("%llu bytes of dynamic shared memory requested; a block has at most %d", shared_bytes, KILN_EMU_MAX_DYNAMIC_SHARED);
        return 1;
    }
    launch.threads = (unsigned int)threads;
    for (unsigned int z = 0; z < gz; z++)
        for (unsigned int y = 0; y < gy; y++)
            for (unsigned int x = 0; x < gx; x++)
            {
                launch.block_idx = uint3{x, y, z};
                std::memset(dynamic_shared_memory, 0xff, (size_t)shared_bytes);
                if (!run_block()) return 1;
            }
    return 0;
}
