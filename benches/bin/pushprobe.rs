use std::mem::MaybeUninit;
const WORDS: usize = 5_000_000;
struct Big {
    words: [u64; WORDS],
    tag: u32,
}
#[inline(always)]
fn big(tag: u32) -> Big {
    Big { words: [u64::from(tag); WORDS], tag }
}

#[inline(never)]
fn v1<T>(dst: &mut MaybeUninit<T>, f: impl FnOnce() -> T) {
    dst.write(f());
}
#[inline(always)]
fn v2<T>(dst: &mut MaybeUninit<T>, f: impl FnOnce() -> T) {
    dst.write(f());
}
#[inline(never)]
fn v3<T>(dst: *mut T, f: impl FnOnce() -> T) {
    unsafe { dst.write(f()) }
}
#[inline(never)]
fn call<T>(f: impl FnOnce() -> T) -> T {
    f()
}
#[inline(always)]
fn v4<T>(dst: &mut MaybeUninit<T>, f: impl FnOnce() -> T) {
    dst.write(call(f));
}
#[inline(never)]
fn v5<T>(dst: &mut MaybeUninit<T>, f: impl FnOnce() -> T) {
    *dst = MaybeUninit::new(f());
}

fn main() {
    let which = std::env::args().nth(1).unwrap();
    let t = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            let a = fiberalloc::Arena::new();
            let p = a.alloc_layout(std::alloc::Layout::new::<Big>()).cast::<MaybeUninit<Big>>();
            let slot = unsafe { &mut *p.as_ptr() };
            if which.starts_with("arr") {
                let a = fiberalloc::Arena::new();
                let p = a
                    .alloc_layout(std::alloc::Layout::new::<[u64; WORDS]>())
                    .cast::<MaybeUninit<[u64; WORDS]>>();
                let slot = unsafe { &mut *p.as_ptr() };
                match which.as_str() {
                    "arr1" => v1(slot, || [3u64; WORDS]),
                    "arr2" => v2(slot, || [3u64; WORDS]),
                    "arr3" => v3(p.as_ptr().cast(), || [3u64; WORDS]),
                    "arr4" => v4(slot, || [3u64; WORDS]),
                    "arrfa" => {
                        let r = a.alloc_with(|| [3u64; WORDS]);
                        println!("{}", r[5]);
                    }
                    _ => {}
                }
                println!("{}", unsafe { slot.assume_init_ref() }[WORDS - 1]);
                return;
            }
            match which.as_str() {
                "v1" => v1(slot, || big(3)),
                "v2" => v2(slot, || big(3)),
                "v3" => v3(p.as_ptr().cast(), || big(3)),
                "v4" => v4(slot, || big(3)),
                "v5" => v5(slot, || big(3)),
                _ => {}
            }
            let r = unsafe { slot.assume_init_ref() };
            println!("{} {}", r.tag, r.words[WORDS - 1]);
        })
        .unwrap();
    t.join().unwrap();
}
