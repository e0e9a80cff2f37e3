// A small expression language written as bumpalo code: a tokenizer, a
// parser that builds an AST in the arena, an evaluator with an
// environment of arena vectors, a constant folder and a pretty printer.
// `tests/port_bumpalo.rs` includes this file twice: once after
// `use bumpalo::...` and once after `use fiberalloc::... as ...`. Nothing
// below names either crate.

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tok<'bump> {
    Num(i64),
    Ident(&'bump str),
    Str(&'bump str),
    Op(char),
    LParen,
    RParen,
    Comma,
    Let,
    In,
    If,
    Then,
    Else,
}

pub fn tokenize<'bump>(bump: &'bump Bump, src: &str) -> Vec<'bump, Tok<'bump>> {
    let mut out = Vec::with_capacity_in(src.len() / 2, bump);
    let bytes = src.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i] as char;
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < bytes.len() && (bytes[i] as char).is_ascii_digit() {
                i += 1;
            }
            out.push(Tok::Num(src[start..i].parse().unwrap()));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < bytes.len() && ((bytes[i] as char).is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let word = &src[start..i];
            out.push(match word {
                "let" => Tok::Let,
                "in" => Tok::In,
                "if" => Tok::If,
                "then" => Tok::Then,
                "else" => Tok::Else,
                _ => Tok::Ident(bump.alloc_str(word)),
            });
        } else if c == '"' {
            let mut s = String::new_in(bump);
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                if bytes[i] == b'\\' && i + 1 < bytes.len() {
                    i += 1;
                    s.push(match bytes[i] {
                        b'n' => '\n',
                        b't' => '\t',
                        other => other as char,
                    });
                } else {
                    s.push(bytes[i] as char);
                }
                i += 1;
            }
            i += 1;
            out.push(Tok::Str(s.into_bump_str()));
        } else {
            out.push(match c {
                '(' => Tok::LParen,
                ')' => Tok::RParen,
                ',' => Tok::Comma,
                _ => Tok::Op(c),
            });
            i += 1;
        }
    }
    out
}

#[derive(Debug)]
pub enum Expr<'bump> {
    Num(i64),
    Str(&'bump str),
    Var(&'bump str),
    Bin(char, &'bump Expr<'bump>, &'bump Expr<'bump>),
    Neg(&'bump Expr<'bump>),
    Let(&'bump str, &'bump Expr<'bump>, &'bump Expr<'bump>),
    If(&'bump Expr<'bump>, &'bump Expr<'bump>, &'bump Expr<'bump>),
    Call(&'bump str, &'bump [&'bump Expr<'bump>]),
}

pub struct Parser<'bump, 't> {
    bump: &'bump Bump,
    toks: &'t [Tok<'bump>],
    pos: usize,
}

impl<'bump, 't> Parser<'bump, 't> {
    pub fn new(bump: &'bump Bump, toks: &'t [Tok<'bump>]) -> Self {
        Parser { bump, toks, pos: 0 }
    }

    fn peek(&self) -> Option<Tok<'bump>> {
        self.toks.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<Tok<'bump>> {
        let t = self.peek();
        self.pos += 1;
        t
    }

    fn expect(&mut self, t: Tok<'bump>) {
        let got = self.next();
        assert_eq!(got, Some(t), "expected {t:?}");
    }

    pub fn expr(&mut self) -> &'bump Expr<'bump> {
        match self.peek() {
            Some(Tok::Let) => {
                self.next();
                let Some(Tok::Ident(name)) = self.next() else { panic!("let needs a name") };
                self.expect(Tok::Op('='));
                let value = self.expr();
                self.expect(Tok::In);
                let body = self.expr();
                self.bump.alloc(Expr::Let(name, value, body))
            }
            Some(Tok::If) => {
                self.next();
                let c = self.expr();
                self.expect(Tok::Then);
                let t = self.expr();
                self.expect(Tok::Else);
                let e = self.expr();
                self.bump.alloc_with(|| Expr::If(c, t, e))
            }
            _ => self.binary(0),
        }
    }

    fn precedence(op: char) -> Option<u8> {
        match op {
            '<' | '=' => Some(1),
            '+' | '-' => Some(2),
            '*' | '/' | '%' => Some(3),
            _ => None,
        }
    }

    fn binary(&mut self, min: u8) -> &'bump Expr<'bump> {
        let mut lhs = self.unary();
        while let Some(Tok::Op(op)) = self.peek() {
            let Some(p) = Self::precedence(op) else { break };
            if p < min {
                break;
            }
            self.next();
            let rhs = self.binary(p + 1);
            lhs = self.bump.alloc(Expr::Bin(op, lhs, rhs));
        }
        lhs
    }

    fn unary(&mut self) -> &'bump Expr<'bump> {
        match self.next() {
            Some(Tok::Op('-')) => {
                let e = self.unary();
                self.bump.alloc(Expr::Neg(e))
            }
            Some(Tok::Num(n)) => self.bump.alloc(Expr::Num(n)),
            Some(Tok::Str(s)) => self.bump.alloc(Expr::Str(s)),
            Some(Tok::LParen) => {
                let e = self.expr();
                self.expect(Tok::RParen);
                e
            }
            Some(Tok::Ident(name)) if self.peek() == Some(Tok::LParen) => {
                self.next();
                let mut args = Vec::new_in(self.bump);
                while self.peek() != Some(Tok::RParen) {
                    args.push(self.expr());
                    if self.peek() == Some(Tok::Comma) {
                        self.next();
                    }
                }
                self.expect(Tok::RParen);
                self.bump.alloc(Expr::Call(name, args.into_bump_slice()))
            }
            Some(Tok::Ident(name)) => self.bump.alloc(Expr::Var(name)),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value<'bump> {
    Int(i64),
    Text(&'bump str),
}

pub struct Env<'bump> {
    names: Vec<'bump, &'bump str>,
    values: Vec<'bump, Value<'bump>>,
}

impl<'bump> Env<'bump> {
    pub fn new(bump: &'bump Bump) -> Self {
        Env { names: Vec::new_in(bump), values: Vec::new_in(bump) }
    }

    fn lookup(&self, name: &str) -> Value<'bump> {
        let i = self.names.iter().rposition(|n| *n == name).expect("unbound variable");
        self.values[i].clone()
    }
}

pub fn eval<'bump>(bump: &'bump Bump, env: &mut Env<'bump>, e: &Expr<'bump>) -> Value<'bump> {
    match e {
        Expr::Num(n) => Value::Int(*n),
        Expr::Str(s) => Value::Text(s),
        Expr::Var(v) => env.lookup(v),
        Expr::Neg(x) => match eval(bump, env, x) {
            Value::Int(n) => Value::Int(-n),
            Value::Text(t) => {
                let rev: String<'bump> = t.chars().rev().collect_in(bump);
                Value::Text(rev.into_bump_str())
            }
        },
        Expr::Bin(op, a, b) => {
            let (a, b) = (eval(bump, env, a), eval(bump, env, b));
            match (op, a, b) {
                ('+', Value::Text(x), y) => {
                    let y = match y {
                        Value::Int(n) => format!(in bump, "{}", n).into_bump_str(),
                        Value::Text(t) => t,
                    };
                    let mut s = String::with_capacity_in(x.len() + y.len(), bump);
                    s.push_str(x);
                    s.push_str(y);
                    Value::Text(s.into_bump_str())
                }
                (op, Value::Int(x), Value::Int(y)) => Value::Int(match op {
                    '+' => x + y,
                    '-' => x - y,
                    '*' => x * y,
                    '/' => x / y,
                    '%' => x % y,
                    '<' => (x < y) as i64,
                    '=' => (x == y) as i64,
                    _ => panic!("bad operator {op}"),
                }),
                (op, a, b) => panic!("cannot apply {op} to {a:?} and {b:?}"),
            }
        }
        Expr::Let(name, value, body) => {
            let v = eval(bump, env, value);
            env.names.push(name);
            env.values.push(v);
            let out = eval(bump, env, body);
            env.names.pop();
            env.values.pop();
            out
        }
        Expr::If(c, t, f) => match eval(bump, env, c) {
            Value::Int(0) => eval(bump, env, f),
            _ => eval(bump, env, t),
        },
        Expr::Call(name, args) => {
            let mut vals = Vec::with_capacity_in(args.len(), bump);
            for a in args.iter() {
                vals.push(eval(bump, env, a));
            }
            match *name {
                "max" => vals.iter().filter_map(|v| if let Value::Int(n) = v { Some(*n) } else { None }).max().map_or(Value::Int(0), Value::Int),
                "len" => match &vals[0] {
                    Value::Text(t) => Value::Int(t.len() as i64),
                    Value::Int(n) => Value::Int(format!(in bump, "{}", n).len() as i64),
                },
                "join" => {
                    let mut parts: Vec<'bump, &'bump str> = Vec::new_in(bump);
                    for v in vals.iter() {
                        parts.push(match v {
                            Value::Text(t) => t,
                            Value::Int(n) => format!(in bump, "{}", n).into_bump_str(),
                        });
                    }
                    let mut s = String::new_in(bump);
                    for (i, p) in parts.iter().enumerate() {
                        if i > 0 {
                            s.push_str(", ");
                        }
                        s.push_str(p);
                    }
                    Value::Text(s.into_bump_str())
                }
                "sum_to" => {
                    let Value::Int(n) = vals[0] else { panic!("sum_to needs an int") };
                    let xs = bump.alloc_slice_fill_iter((1..n as i32 + 1).map(|i| i64::from(i) * i64::from(i)));
                    Value::Int(xs.iter().sum())
                }
                _ => panic!("unknown function {name}"),
            }
        }
    }
}

/// Constant folding: a new tree in the same arena.
pub fn fold<'bump>(bump: &'bump Bump, e: &'bump Expr<'bump>) -> &'bump Expr<'bump> {
    match e {
        Expr::Bin(op, a, b) => {
            let (a, b) = (fold(bump, a), fold(bump, b));
            if let (Expr::Num(x), Expr::Num(y)) = (a, b) {
                let v = match op {
                    '+' => Some(x + y),
                    '-' => Some(x - y),
                    '*' => Some(x * y),
                    _ => None,
                };
                if let Some(v) = v {
                    return bump.alloc(Expr::Num(v));
                }
            }
            bump.alloc(Expr::Bin(*op, a, b))
        }
        Expr::Neg(x) => match fold(bump, x) {
            Expr::Num(n) => bump.alloc(Expr::Num(-n)),
            other => bump.alloc(Expr::Neg(other)),
        },
        Expr::Let(n, v, b) => bump.alloc(Expr::Let(n, fold(bump, v), fold(bump, b))),
        Expr::If(c, t, f) => bump.alloc(Expr::If(fold(bump, c), fold(bump, t), fold(bump, f))),
        Expr::Call(n, args) => {
            let folded: Vec<'bump, &'bump Expr<'bump>> = args.iter().map(|a| fold(bump, a)).collect_in(bump);
            bump.alloc(Expr::Call(n, folded.into_bump_slice()))
        }
        leaf => leaf,
    }
}

pub fn print<'bump>(bump: &'bump Bump, e: &Expr<'bump>, out: &mut String<'bump>) {
    match e {
        Expr::Num(n) => out.push_str(&format!(in bump, "{}", n)),
        Expr::Str(s) => {
            out.push('"');
            out.push_str(s);
            out.push('"');
        }
        Expr::Var(v) => out.push_str(v),
        Expr::Neg(x) => {
            out.push('-');
            print(bump, x, out);
        }
        Expr::Bin(op, a, b) => {
            out.push('(');
            print(bump, a, out);
            out.push(' ');
            out.push(*op);
            out.push(' ');
            print(bump, b, out);
            out.push(')');
        }
        Expr::Let(n, v, b) => {
            out.push_str("let ");
            out.push_str(n);
            out.push_str(" = ");
            print(bump, v, out);
            out.push_str(" in ");
            print(bump, b, out);
        }
        Expr::If(c, t, f) => {
            out.push_str("if ");
            print(bump, c, out);
            out.push_str(" then ");
            print(bump, t, out);
            out.push_str(" else ");
            print(bump, f, out);
        }
        Expr::Call(n, args) => {
            out.push_str(n);
            out.push('(');
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                print(bump, a, out);
            }
            out.push(')');
        }
    }
}

pub const PROGRAMS: &[&str] = &[
    "1 + 2 * 3 - -4",
    "let x = 5 in let y = x * x in y - x % 3",
    "if 2 < 3 then \"yes\" + 1 else \"no\"",
    "join(\"a\", 1 + 1, max(3, 9, 4), len(\"hello\"))",
    "let s = \"abc\" in -s + \"\\n\" + len(s)",
    "sum_to(100) / (2 * 5)",
    "let n = 10 in if n = 10 then join(n, n * n, -n) else 0",
];

/// Runs every program and returns what it printed, one line each.
pub fn run() -> std::string::String {
    let mut bump = Bump::new();
    let mut report = std::string::String::new();
    for round in 0..3 {
        for src in PROGRAMS {
            let toks = tokenize(&bump, src);
            let mut p = Parser::new(&bump, &toks);
            let ast = p.expr();
            let folded = fold(&bump, ast);
            let mut shown = String::new_in(&bump);
            print(&bump, folded, &mut shown);
            let mut env = Env::new(&bump);
            let v = eval(&bump, &mut env, ast);
            let again = eval(&bump, &mut env, folded);
            assert_eq!(v, again, "folding changed the value of {src}");
            let line = format!(in &bump, "{} => {:?}\n", shown, v);
            report.push_str(&line);
            let mut kinds = vec![in &bump];
            for t in toks.iter() {
                kinds.push(match t {
                    Tok::Num(_) => 'n',
                    Tok::Ident(_) => 'i',
                    Tok::Str(_) => 's',
                    Tok::Op(_) => 'o',
                    _ => 'k',
                });
            }
            kinds.dedup();
            kinds.retain(|k| *k != 'k');
            let summary: String = kinds.iter().copied().collect_in(&bump);
            report.push_str(summary.as_str());
            report.push('\n');
        }
        let boxed = Box::new_in(round, &bump);
        report.push_str(&format!(in &bump, "round {} used {} bytes or more\n", *boxed, (bump.allocated_bytes() > 0) as u8));
        drop(boxed);
        bump.reset();
    }
    let copied = bump.alloc_slice_copy(&[1u8, 2, 3]);
    let cloned = bump.alloc_slice_clone(&[Value::Int(1), Value::Text("x")]);
    let filled = bump.alloc_slice_fill_copy(2, 7u16);
    report.push_str(&std::format!("{copied:?} {cloned:?} {filled:?}\n"));
    report
}
