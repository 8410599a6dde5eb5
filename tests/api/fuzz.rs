//! A schema-driven fuzzer: random valid and nearly valid operations, built from the live
//! schema, sent by anonymous, member and admin clients. Whatever comes back must be an
//! answer the protocol allows: no 5xx, no `INTERNAL`, and a code on every error.
//!
//! `KETTLE_FUZZ_REQUESTS` (default 10,000 per backend) sets how many, `KETTLE_FUZZ_SEED`
//! (default fixed) which; the seed is printed, so a failure found once can be replayed.
//! Every failure is reported with the request that produced it.
//!
//! The schema model and GraphQL literal writer here are shared with `hostile`.

use std::{
    collections::{BTreeMap, HashMap},
    panic::AssertUnwindSafe,
    time::{Duration, Instant},
};

use async_graphql::parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};
use futures_util::{stream, FutureExt, StreamExt};
use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};
use serde_json::{json, Value};

use crate::{
    case_studies::{admin, case_study, create_case_study, create_organisation, create_topic, PUBLISH},
    scenarios,
    support::{Client, Scenario, TestApp},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![fuzzed_operations_never_fail_inside]
}

// ---------------------------------------------------------------------------------------
// The schema, as a small model both this fuzzer and `hostile` generate requests from.

#[derive(Clone, Debug)]
pub(crate) enum Ty {
    Named(String),
    List(Box<Ty>),
    NonNull(Box<Ty>),
}

impl Ty {
    fn from_parser(t: &Type) -> Ty {
        let inner = match &t.base {
            BaseType::Named(name) => Ty::Named(name.to_string()),
            BaseType::List(item) => Ty::List(Box::new(Ty::from_parser(item))),
        };
        if t.nullable {
            inner
        } else {
            Ty::NonNull(Box::new(inner))
        }
    }

    /// The named type inside any list and non-null wrappers.
    pub(crate) fn named(&self) -> &str {
        match self {
            Ty::Named(name) => name,
            Ty::List(inner) | Ty::NonNull(inner) => inner.named(),
        }
    }

    pub(crate) fn is_non_null(&self) -> bool {
        matches!(self, Ty::NonNull(_))
    }

    pub(crate) fn nullable(&self) -> &Ty {
        match self {
            Ty::NonNull(inner) => inner,
            other => other,
        }
    }

    /// As written in a variable declaration.
    pub(crate) fn sdl(&self) -> String {
        match self {
            Ty::Named(name) => name.clone(),
            Ty::List(inner) => format!("[{}]", inner.sdl()),
            Ty::NonNull(inner) => format!("{}!", inner.sdl()),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct InputValue {
    pub name: String,
    pub ty: Ty,
    pub has_default: bool,
}

impl InputValue {
    pub(crate) fn required(&self) -> bool {
        self.ty.is_non_null() && !self.has_default
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Field {
    pub name: String,
    pub args: Vec<InputValue>,
    pub ty: Ty,
}

#[derive(Clone, Debug)]
pub(crate) enum Kind {
    Scalar,
    Object(Vec<Field>),
    Interface(Vec<Field>),
    Union(Vec<String>),
    Enum(Vec<String>),
    Input(Vec<InputValue>),
}

pub(crate) struct Model {
    pub types: BTreeMap<String, Kind>,
    /// Interface name → the object types implementing it.
    pub implementers: BTreeMap<String, Vec<String>>,
}

impl Model {
    /// The live schema (what `kettle schema` prints, and `schema.graphql` holds).
    pub(crate) fn load() -> Model {
        let sdl = kettle::graphql::sdl();
        let document = async_graphql::parser::parse_schema(&sdl).expect("the schema's SDL parses");
        let mut types = BTreeMap::new();
        let mut implementers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let input_values =
            |values: &[async_graphql::Positioned<async_graphql::parser::types::InputValueDefinition>]| {
                values
                    .iter()
                    .map(|v| InputValue {
                        name: v.node.name.node.to_string(),
                        ty: Ty::from_parser(&v.node.ty.node),
                        has_default: v.node.default_value.is_some(),
                    })
                    .collect::<Vec<_>>()
            };
        for definition in &document.definitions {
            let TypeSystemDefinition::Type(definition) = definition else { continue };
            let name = definition.node.name.node.to_string();
            let fields = |fields: &[async_graphql::Positioned<async_graphql::parser::types::FieldDefinition>]| {
                fields
                    .iter()
                    .map(|f| Field {
                        name: f.node.name.node.to_string(),
                        args: input_values(&f.node.arguments),
                        ty: Ty::from_parser(&f.node.ty.node),
                    })
                    .collect::<Vec<_>>()
            };
            let kind = match &definition.node.kind {
                TypeKind::Scalar => Kind::Scalar,
                TypeKind::Object(object) => {
                    for interface in &object.implements {
                        implementers.entry(interface.node.to_string()).or_default().push(name.clone());
                    }
                    Kind::Object(fields(&object.fields))
                }
                TypeKind::Interface(interface) => Kind::Interface(fields(&interface.fields)),
                TypeKind::Union(union) => Kind::Union(union.members.iter().map(|m| m.node.to_string()).collect()),
                TypeKind::Enum(e) => Kind::Enum(e.values.iter().map(|v| v.node.value.node.to_string()).collect()),
                TypeKind::InputObject(input) => Kind::Input(input_values(&input.fields)),
            };
            types.insert(name, kind);
        }
        Model { types, implementers }
    }

    pub(crate) fn kind(&self, name: &str) -> &Kind {
        static SCALAR: Kind = Kind::Scalar;
        self.types.get(name).unwrap_or(&SCALAR)
    }

    /// The fields of an object or interface type.
    pub(crate) fn fields(&self, name: &str) -> &[Field] {
        match self.kind(name) {
            Kind::Object(fields) | Kind::Interface(fields) => fields,
            _ => &[],
        }
    }

    pub(crate) fn input_fields(&self, name: &str) -> &[InputValue] {
        match self.kind(name) {
            Kind::Input(fields) => fields,
            _ => &[],
        }
    }

    /// Object types a value of `name` may be (for interfaces and unions).
    pub(crate) fn possible_types(&self, name: &str) -> Vec<String> {
        match self.kind(name) {
            Kind::Interface(_) => self.implementers.get(name).cloned().unwrap_or_default(),
            Kind::Union(members) => members.clone(),
            _ => vec![name.to_string()],
        }
    }

    pub(crate) fn is_leaf(&self, name: &str) -> bool {
        matches!(self.kind(name), Kind::Scalar | Kind::Enum(_))
    }

    /// Paths (input field names) from `ty` to every String or ID it holds, through
    /// input objects and lists.
    pub(crate) fn text_paths(&self, ty: &Ty) -> Vec<Vec<String>> {
        self.text_paths_within(ty, 0)
    }

    fn text_paths_within(&self, ty: &Ty, depth: usize) -> Vec<Vec<String>> {
        let name = ty.named();
        if name == "String" || name == "ID" {
            return vec![vec![]];
        }
        if depth > 5 {
            return vec![];
        }
        let mut paths = Vec::new();
        for field in self.input_fields(name) {
            for mut rest in self.text_paths_within(&field.ty, depth + 1) {
                rest.insert(0, field.name.clone());
                paths.push(rest);
            }
        }
        paths
    }
}

// ---------------------------------------------------------------------------------------
// Values, written either as JSON variables or as GraphQL literals.

#[derive(Clone, Debug)]
pub(crate) enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Enum(String),
    List(Vec<Lit>),
    Obj(Vec<(String, Lit)>),
}

impl Lit {
    pub(crate) fn json(&self) -> Value {
        match self {
            Lit::Null => Value::Null,
            Lit::Bool(b) => json!(b),
            Lit::Int(n) => json!(n),
            Lit::Float(f) => json!(f),
            Lit::Str(s) | Lit::Enum(s) => json!(s),
            Lit::List(items) => Value::Array(items.iter().map(Lit::json).collect()),
            Lit::Obj(fields) => Value::Object(fields.iter().map(|(k, v)| (k.clone(), v.json())).collect()),
        }
    }

    pub(crate) fn graphql(&self) -> String {
        match self {
            Lit::Null => "null".into(),
            Lit::Bool(b) => b.to_string(),
            Lit::Int(n) => n.to_string(),
            Lit::Float(f) => {
                let text = format!("{f:?}");
                if text.contains('.') || text.contains('e') {
                    text
                } else {
                    format!("{text}.0")
                }
            }
            Lit::Str(s) => graphql_string(s),
            Lit::Enum(e) => e.clone(),
            Lit::List(items) => format!("[{}]", items.iter().map(Lit::graphql).collect::<Vec<_>>().join(", ")),
            Lit::Obj(fields) => {
                format!(
                    "{{{}}}",
                    fields.iter().map(|(k, v)| format!("{k}: {}", v.graphql())).collect::<Vec<_>>().join(", ")
                )
            }
        }
    }
}

/// A GraphQL string literal: controls, DEL, C1 and BMP noncharacters as `\uXXXX` escapes
/// (the parser takes no surrogate pairs, so characters beyond the BMP go in raw).
pub(crate) fn graphql_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        let code = c as u32;
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            _ if code < 0x20
                || (0x7f..=0x9f).contains(&code)
                || (0xfdd0..=0xfdef).contains(&code)
                || code == 0xfffe
                || code == 0xffff =>
            {
                out.push_str(&format!("\\u{code:04X}"))
            }
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Every `extensions.code` in a response body, in order.
pub(crate) fn all_codes(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors.iter().map(|e| e["extensions"]["code"].as_str().unwrap_or("(no code)").to_string()).collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// The fuzzer.

/// What the fuzzer's requests may refer to: real objects, and a few that are not.
struct Pool {
    ids: Vec<String>,
    handles: Vec<String>,
    slugs: Vec<String>,
}

const GARBAGE_IDS: &[&str] = &[
    "",
    " ",
    "1",
    "abc",
    "Q2FzZVN0dWR5OjA",                            // CaseStudy:0
    "Q2FzZVN0dWR5Oi0x",                           // CaseStudy:-1
    "Q2FzZVN0dWR5Ojk5OTk5OTk5OTk5OTk5OTk5OTk5OQ", // CaseStudy:99999999999999999999
    "VG9waWM6OTIyMzM3MjAzNjg1NDc3NTgwNw",         // Topic:9223372036854775807
    "Tm9wZTox",                                   // Nope:1
    "TWVtYmVyOg",                                 // Member:
    "Og",                                         // :
    "////",
    "%00",
    "Q2FzZVN0dWR5OjE=", // padded
];

const EDGE_STRINGS: &[&str] = &[
    "",
    " ",
    "a",
    "   padded   ",
    "Ünïcödé ✓ 👩‍💻 日本語",
    "\u{202E}reversed",
    "zero\u{200B}width",
    "\"quotes' `ticks`",
    "back\\slash",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "%00%25%",
    "../../etc/passwd",
    "@ada",
    "Europe/London",
    "2027-03-11T16:00",
    "9999-12-31T23:59",
    "-000001-01-01T00:00",
    "https://example.org/x",
    "javascript:alert(1)",
    "----------------------------------------",
    "*** \"\" ((( ))) ^ : NEAR AND OR NOT",
    "[link](javascript:alert(1))",
    "> - > - > - 1. 1. 1.",
    "line\nbreak\r\nand\ttab",
    "nul\u{0}byte",
    "bell\u{7}",
    "del\u{7f}",
    "next\u{85}line",
    "non\u{FFFE}char",
    "MIT",
    "OGL-UK-3.0",
];

fn random_string(rng: &mut StdRng, name: &str, pool: &Pool) -> String {
    match rng.gen_range(0..100) {
        0..=24 => EDGE_STRINGS.choose(rng).unwrap().to_string(),
        25..=27 => "x".repeat(*[201, 1_001, 10_001, 100_001].choose(rng).unwrap()),
        28..=30 => "é".repeat(rng.gen_range(1..400)),
        31..=40 => pool.handles.choose(rng).cloned().unwrap_or_default(),
        41..=50 => pool.slugs.choose(rng).cloned().unwrap_or_default(),
        _ => plausible_string(rng, name),
    }
}

fn plausible_string(rng: &mut StdRng, name: &str) -> String {
    let n: u32 = rng.gen_range(0..1_000_000);
    let lower = name.to_ascii_lowercase();
    if lower.contains("email") {
        format!("fuzz{n}@example.org")
    } else if lower.contains("password") {
        crate::support::PASSWORD.to_string()
    } else if lower.contains("timezone") {
        ["Europe/London", "America/New_York", "UTC", "Pacific/Chatham"].choose(rng).unwrap().to_string()
    } else if lower == "start" {
        format!("2027-0{}-1{}T16:00", rng.gen_range(1..9), rng.gen_range(0..9))
    } else if lower == "end" {
        format!("2027-0{}-1{}T18:00", rng.gen_range(1..9), rng.gen_range(0..9))
    } else if lower == "until" {
        "2027-12-31".into()
    } else if lower.contains("url") || lower.contains("website") {
        format!("https://example.org/{n}")
    } else if lower.contains("licence") {
        ["MIT", "OGL-UK-3.0", "CC-BY-4.0", "Apache-2.0"].choose(rng).unwrap().to_string()
    } else if lower.contains("handle") {
        "ada".into()
    } else if lower == "provider" {
        "github".into()
    } else if lower == "after" || lower == "before" {
        ["WzEsMV0", "eyJ4IjoxfQ", "bnVsbA", "W10"].choose(rng).unwrap().to_string()
    } else {
        format!("Fuzz {name} {n}")
    }
}

/// The type name inside a global id.
fn id_kind(id: &str) -> String {
    kettle::graphql::relay::parse_global_id(id).map(|(kind, _)| kind).unwrap_or_default()
}

fn random_int(rng: &mut StdRng, name: &str) -> i64 {
    if matches!(name, "first" | "last") && rng.gen_range(0..100) < 80 {
        return rng.gen_range(0..=20);
    }
    match rng.gen_range(0..100) {
        0..=49 => *[0, -1, 1, 2, 5, 20, 50, 99, 100, 101, 450, 451, 1000, i32::MAX as i64, i32::MIN as i64]
            .choose(rng)
            .unwrap(),
        50..=59 if name == "version" => 1,
        _ => rng.gen_range(-5..200),
    }
}

struct Gen<'a> {
    model: &'a Model,
    pool: &'a Pool,
    rng: StdRng,
    variables: Vec<(String, String, Value)>,
}

impl Gen<'_> {
    fn chance(&mut self, percent: u32) -> bool {
        self.rng.gen_range(0..100) < percent
    }

    /// A value for `ty`, usually valid, sometimes not quite.
    fn value(&mut self, ty: &Ty, name: &str, depth: usize) -> Lit {
        match ty {
            Ty::NonNull(inner) => {
                if self.chance(2) {
                    Lit::Null
                } else {
                    self.value(inner, name, depth)
                }
            }
            Ty::List(inner) => {
                let len = if self.chance(3) { 101 } else { self.rng.gen_range(0..4) };
                Lit::List((0..len).map(|_| self.value(inner, name, depth + 1)).collect())
            }
            Ty::Named(type_name) => {
                if self.chance(2) {
                    // The wrong type altogether.
                    return match self.rng.gen_range(0..4) {
                        0 => Lit::Int(7),
                        1 => Lit::Str("seven".into()),
                        2 => Lit::Bool(true),
                        _ => Lit::Float(7.5),
                    };
                }
                match type_name.as_str() {
                    "String" => Lit::Str(random_string(&mut self.rng, name, self.pool)),
                    "ID" => {
                        if self.chance(85) && !self.pool.ids.is_empty() {
                            // Usually an id of the kind the field's name suggests.
                            let lower = name.to_ascii_lowercase();
                            let hint = [
                                ("topic", "Topic"),
                                ("into", "Topic"),
                                ("organisation", "Organisation"),
                                ("casestudy", "CaseStudy"),
                                ("subject", "CaseStudy"),
                                ("artefact", "Artefact"),
                                ("adaptedfrom", "Artefact"),
                                ("comment", "Comment"),
                                ("parent", "Comment"),
                                ("group", "MeetupGroup"),
                                ("event", "MeetupEvent"),
                                ("member", "Member"),
                            ]
                            .iter()
                            .find(|(part, _)| lower.contains(part))
                            .map(|(_, kind)| *kind);
                            let typed: Vec<&String> = match hint {
                                Some(kind) if self.chance(70) => {
                                    self.pool.ids.iter().filter(|id| id_kind(id) == kind).collect()
                                }
                                _ => vec![],
                            };
                            match typed.choose(&mut self.rng) {
                                Some(id) => Lit::Str((*id).clone()),
                                None => Lit::Str(self.pool.ids.choose(&mut self.rng).unwrap().clone()),
                            }
                        } else {
                            Lit::Str(GARBAGE_IDS.choose(&mut self.rng).unwrap().to_string())
                        }
                    }
                    "Int" => Lit::Int(random_int(&mut self.rng, name)),
                    "Float" => Lit::Float(self.rng.gen_range(-10.0..10.0)),
                    "Boolean" => Lit::Bool(self.rng.gen()),
                    "DateTime" => Lit::Str("2027-03-11T16:00:00Z".into()),
                    other => match self.model.kind(other) {
                        Kind::Enum(values) => {
                            if self.chance(4) {
                                Lit::Enum("NOT_A_VALUE".into())
                            } else {
                                Lit::Enum(values.choose(&mut self.rng).unwrap().clone())
                            }
                        }
                        Kind::Input(fields) => {
                            let fields = fields.clone();
                            let mut out = Vec::new();
                            if depth < 4 {
                                for field in &fields {
                                    let include = if field.required() { !self.chance(4) } else { self.chance(50) };
                                    if include {
                                        out.push((field.name.clone(), self.value(&field.ty, &field.name, depth + 1)));
                                    }
                                }
                            }
                            if self.chance(3) {
                                out.push(("notAField".into(), Lit::Int(1)));
                            }
                            Lit::Obj(out)
                        }
                        _ => Lit::Str(random_string(&mut self.rng, name, self.pool)),
                    },
                }
            }
        }
    }

    /// `(a: …, b: …)` for a field, each argument inline or as a variable.
    fn arguments(&mut self, args: &[InputValue], root: bool) -> String {
        let mut parts = Vec::new();
        for arg in args {
            // Cursors are rarely valid and `last` conflicts with `first`: less often.
            let include = if arg.required() {
                !self.chance(3)
            } else if matches!(arg.name.as_str(), "after" | "before" | "last") {
                self.chance(10)
            } else {
                self.chance(40)
            };
            if !include {
                continue;
            }
            let value = self.value(&arg.ty, &arg.name, 0);
            if self.chance(50) {
                let name = format!("v{}", self.variables.len());
                let mut json = value.json();
                if self.chance(3) {
                    json = json!({ "wrong": [1, "type"] });
                }
                self.variables.push((name.clone(), arg.ty.sdl(), json));
                parts.push(format!("{}: ${name}", arg.name));
            } else {
                parts.push(format!("{}: {}", arg.name, value.graphql()));
            }
        }
        if root && self.chance(2) {
            parts.push("notAnArgument: 1".into());
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("({})", parts.join(", "))
        }
    }

    /// A selection set for a value of type `name`, `depth` levels below the root.
    fn selection(&mut self, name: &str, depth: usize) -> String {
        if self.model.is_leaf(name) {
            return String::new();
        }
        let mut parts = vec![];
        let mut used = std::collections::BTreeSet::new();
        let fields: Vec<Field> = self.model.fields(name).to_vec();
        let count = self.rng.gen_range(1..=4);
        for _ in 0..count {
            let Some(field) = fields.choose(&mut self.rng).cloned() else { break };
            let leaf = self.model.is_leaf(field.ty.named());
            if !leaf && depth >= 3 {
                continue;
            }
            let args = self.arguments(&field.args, false);
            let sub = if leaf { String::new() } else { self.selection(field.ty.named(), depth + 1) };
            // The same field twice with different arguments or selections cannot merge
            // (a validation error, not what the fuzzer is after): alias repeats.
            let repeat = !used.insert(field.name.clone());
            let alias = if (repeat && (!args.is_empty() || !sub.is_empty())) || self.chance(10) {
                format!("a{}: ", self.rng.gen_range(0..1000))
            } else {
                String::new()
            };
            let directive = match self.rng.gen_range(0..100) {
                0..=2 => " @include(if: true)",
                3..=4 => " @skip(if: true)",
                5 => " @include(if: false)",
                _ => "",
            };
            parts.push(format!("{alias}{}{args}{directive}{sub}", field.name));
        }
        if matches!(self.model.kind(name), Kind::Interface(_) | Kind::Union(_)) {
            let possible = self.model.possible_types(name);
            for _ in 0..self.rng.gen_range(0..3) {
                if let Some(t) = possible.choose(&mut self.rng).cloned() {
                    if depth < 3 {
                        let sub = self.selection(&t, depth + 1);
                        parts.push(format!("... on {t}{sub}"));
                    }
                }
            }
        }
        if parts.is_empty() || self.chance(10) {
            parts.push("__typename".into());
        }
        format!(" {{ {} }}", parts.join(" "))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Who {
    Anonymous,
    Member,
    Admin,
    AdminToken,
}

struct Operation {
    who: Who,
    root: String,
    query: String,
    variables: Value,
}

/// Root mutations a signed-in fuzz client must not run: they could end the session the
/// rest of the run uses (the admin could erase, suspend or demote the member client, or
/// suspend them by deciding a review). They are sent anonymously instead.
const SESSION_ENDING: &[&str] =
    &["signOut", "deleteAccount", "eraseMember", "suspendMember", "setMemberRole", "decideReview"];

fn generate(model: &Model, pool: &Pool, seed: u64, count: usize) -> Vec<Operation> {
    let mut gen = Gen { model, pool, rng: StdRng::seed_from_u64(seed), variables: Vec::new() };
    let queries: Vec<Field> = model.fields("Query").to_vec();
    let mutations: Vec<Field> = model.fields("Mutation").to_vec();
    let mut operations = Vec::with_capacity(count);
    for _ in 0..count {
        gen.variables.clear();
        let mutation = gen.chance(35);
        let roots = if mutation { &mutations } else { &queries };
        let mut who = *[Who::Anonymous, Who::Member, Who::Admin, Who::AdminToken].choose(&mut gen.rng).unwrap();
        let mut fields = Vec::new();
        let mut first_root = String::new();
        let n = if gen.chance(8) { 2 } else { 1 };
        for i in 0..n {
            let field = roots.choose(&mut gen.rng).unwrap().clone();
            if mutation && SESSION_ENDING.contains(&field.name.as_str()) {
                who = Who::Anonymous;
            }
            if i == 0 {
                first_root = field.name.clone();
            }
            let args = gen.arguments(&field.args, true);
            let sub = gen.selection(field.ty.named(), 1);
            let alias = if n > 1 { format!("r{i}: ") } else { String::new() };
            fields.push(format!("{alias}{}{args}{sub}", field.name));
        }
        let declarations = if gen.variables.is_empty() {
            String::new()
        } else {
            format!("({})", gen.variables.iter().map(|(n, t, _)| format!("${n}: {t}")).collect::<Vec<_>>().join(", "))
        };
        let variables: serde_json::Map<String, Value> =
            gen.variables.iter().filter(|_| true).map(|(n, _, v)| (n.clone(), v.clone())).collect();
        let keyword = if mutation { "mutation" } else { "query" };
        operations.push(Operation {
            who,
            root: first_root,
            query: format!("{keyword} Fuzz{declarations} {{ {} }}", fields.join(" ")),
            variables: Value::Object(variables),
        });
    }
    operations
}

/// Limits as generous as the harness's, except sign-in and registration, which keep their
/// defaults: past them the server refuses at once instead of hashing passwords, which
/// would otherwise take most of the fuzzer's time.
const FUZZ_LIMITS: &str =
    "writes_member=100000000/3600, preview_client=100000000/60, graphql_cost_client=100000000000/60";

async fn fuzzed_operations_never_fail_inside(app: TestApp) {
    let own = TestApp::spawn_with(app.backend(), &[("KETTLE_RATE_LIMITS", FUZZ_LIMITS)]).await;
    let outcome = AssertUnwindSafe(fuzz(own.clone())).catch_unwind().await;
    own.finish().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn fuzz(app: TestApp) {
    let requests: usize = std::env::var("KETTLE_FUZZ_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let seed: u64 = std::env::var("KETTLE_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(20_240_611);
    println!(
        "fuzz[{}]: seed {seed} (KETTLE_FUZZ_SEED), {requests} requests (KETTLE_FUZZ_REQUESTS)",
        app.backend().name()
    );

    // A small seeded world for the ids to point at.
    let ada = admin(&app, "ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let topic = create_topic(&ada, "Waste and recycling").await;
    let other_topic = create_topic(&ada, "Accessibility").await;
    let (organisation, org_slug) = create_organisation(&ada, "Barsetshire County Council").await;
    let study = create_case_study(&ada, case_study("Bin collection reminders", &[&topic])).await;
    let study_id = study["id"].as_str().unwrap().to_string();
    ada.data(PUBLISH, json!({ "id": study_id })).await;
    let draft =
        create_case_study(&grace, case_study("A draft", &[&other_topic])).await["id"].as_str().unwrap().to_string();
    let artefact = ada
        .data(
            "mutation($input: CreateArtefactInput!) { createArtefact(input: $input) { artefact { id } userErrors { field message } } }",
            json!({ "input": { "title": "Bin day finder", "kind": "CODE", "description": "A *small* service.", "url": "https://example.org/bins", "licence": "MIT", "status": "IN_USE", "topicIds": [topic], "caseStudyIds": [study_id] } }),
        )
        .await;
    let artefact_id =
        artefact["createArtefact"]["artefact"]["id"].as_str().unwrap_or_else(|| panic!("{artefact}")).to_string();
    let comment = grace
        .data(
            "mutation($input: PostCommentInput!) { postComment(input: $input) { comment { id } userErrors { message } } }",
            json!({ "input": { "subjectId": study_id, "body": "Did residents like it, @ada?" } }),
        )
        .await;
    let comment_id =
        comment["postComment"]["comment"]["id"].as_str().unwrap_or_else(|| panic!("{comment}")).to_string();
    let group = ada
        .data(
            "mutation($input: CreateMeetupGroupInput!) { createMeetupGroup(input: $input) { group { id slug } } }",
            json!({ "input": { "name": "TeaCamp North", "region": "North West" } }),
        )
        .await;
    let group_id = group["createMeetupGroup"]["group"]["id"].as_str().unwrap().to_string();
    let group_slug = group["createMeetupGroup"]["group"]["slug"].as_str().unwrap().to_string();
    let event = ada
        .data(
            "mutation($input: ScheduleMeetupInput!) { scheduleMeetup(input: $input) { event { id } userErrors { field message } } }",
            json!({ "input": { "groupId": group_id, "title": "TeaCamp", "timeZone": "Europe/London", "start": "2027-03-11T16:00", "end": "2027-03-11T18:00", "venueName": "The Federation", "capacity": 2 } }),
        )
        .await;
    let event_id = event["scheduleMeetup"]["event"]["id"].as_str().unwrap_or_else(|| panic!("{event}")).to_string();
    let ada_id = ada.viewer_id().await.unwrap();
    let grace_id = grace.viewer_id().await.unwrap();
    let token = ada.data("mutation { createAccessToken(input: { name: \"fuzz\" }) { token } }", json!({})).await
        ["createAccessToken"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let admin_token = ada.with_token(&token);

    let ids: Vec<String> = vec![
        topic.clone(),
        other_topic,
        organisation,
        study_id,
        draft,
        artefact_id,
        comment_id,
        group_id,
        event_id,
        grace_id,
        ada_id,
    ];
    let topic_slug = ada
        .data("query($id: ID!) { node(id: $id) { ... on Topic { slug } } }", json!({ "id": topic }))
        .await["node"]["slug"]
        .as_str()
        .unwrap()
        .to_string();
    let pool = Pool {
        ids,
        handles: vec!["ada".into(), "@grace".into(), "nobody".into()],
        slugs: vec![topic_slug, org_slug, group_slug, "no-such-slug".into()],
    };

    let model = Model::load();
    let operations = generate(&model, &pool, seed, requests);
    let clients: HashMap<Who, Client> = HashMap::from([
        (Who::Anonymous, app.anonymous()),
        (Who::Member, grace.clone()),
        (Who::Admin, ada.clone()),
        (Who::AdminToken, admin_token),
    ]);

    let started = Instant::now();
    let outcomes: Vec<(usize, u16, Result<Value, String>, Duration)> = stream::iter(0..operations.len())
        .map(|i| {
            let op = &operations[i];
            let client = clients[&op.who].clone();
            let (query, variables) = (op.query.clone(), op.variables.clone());
            async move {
                let t = Instant::now();
                match client_send(&client, &query, &variables).await {
                    Ok((status, body)) => (i, status, body, t.elapsed()),
                    Err(err) => (i, 0, Err(err), t.elapsed()),
                }
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    let elapsed = started.elapsed();

    let mut histogram: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_root: BTreeMap<String, usize> = BTreeMap::new();
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    // (root field, what went wrong) → (times, the first request that did it)
    let mut failures: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    let mut slowest = (Duration::ZERO, 0usize);
    for (i, status, body, took) in &outcomes {
        let op = &operations[*i];
        *by_root.entry(op.root.clone()).or_default() += 1;
        if *took > slowest.0 {
            slowest = (*took, *i);
        }
        let mut problems = Vec::new();
        match body {
            Err(err) => {
                *histogram.entry(format!("{status} (no JSON body)")).or_default() += 1;
                problems.push(format!("HTTP {status}: {err}"));
            }
            Ok(body) => {
                let codes = all_codes(body);
                let label = match codes.first() {
                    Some(code) => format!("{status} {code}"),
                    None => {
                        let user_errors = find_user_error_codes(&body["data"]);
                        match user_errors.first() {
                            Some(code) => format!("{status} data, userErrors {code}"),
                            None => format!("{status} data"),
                        }
                    }
                };
                *histogram.entry(label).or_default() += 1;
                if let Some(message) = body["errors"][0]["message"].as_str() {
                    let code = codes.first().map(String::as_str).unwrap_or("");
                    *refusals.entry(format!("{code}: {}", normalise(message))).or_default() += 1;
                }
                if *status >= 500 {
                    problems.push(format!("HTTP {status}: {}", normalise(&first_message(body))));
                }
                for error in body["errors"].as_array().into_iter().flatten() {
                    let message = error["message"].as_str().unwrap_or("");
                    match error["extensions"]["code"].as_str() {
                        None => problems.push(format!("error without extensions.code: {}", normalise(message))),
                        Some("INTERNAL") => problems.push(format!("INTERNAL: {}", normalise(message))),
                        Some(_) => {}
                    }
                }
            }
        }
        for problem in problems {
            let entry = failures.entry((op.root.clone(), problem)).or_insert((0, *i));
            entry.0 += 1;
            // Keep the shortest request that shows it, as the one to reproduce it with.
            let shown = &operations[entry.1];
            if op.query.len() + op.variables.to_string().len() < shown.query.len() + shown.variables.to_string().len() {
                entry.1 = *i;
            }
        }
    }

    println!(
        "fuzz[{}]: {} requests in {:.1} s ({:.0}/s), slowest {:.2} s ({})",
        app.backend().name(),
        outcomes.len(),
        elapsed.as_secs_f64(),
        outcomes.len() as f64 / elapsed.as_secs_f64(),
        slowest.0.as_secs_f64(),
        operations[slowest.1].root,
    );
    println!("fuzz[{}]: answers by status and first code:", app.backend().name());
    for (label, n) in &histogram {
        println!("    {n:>6}  {label}");
    }
    let mut common: Vec<(&String, &usize)> = refusals.iter().collect();
    common.sort_by(|a, b| b.1.cmp(a.1));
    println!("fuzz[{}]: the most common error messages:", app.backend().name());
    for (message, n) in common.iter().take(12) {
        println!("    {n:>6}  {message}");
    }
    println!(
        "fuzz[{}]: root fields covered: {} of {}",
        app.backend().name(),
        by_root.len(),
        model.fields("Query").len() + model.fields("Mutation").len()
    );
    // The clients' credentials should have survived the run, or later requests tested little.
    for (who, client) in &clients {
        if *who != Who::Anonymous && client.viewer_id().await.is_none() {
            println!("fuzz[{}]: note: the {who:?} client was signed out during the run", app.backend().name());
        }
    }
    if !failures.is_empty() {
        let mut problems: BTreeMap<&str, (usize, Vec<&str>)> = BTreeMap::new();
        for ((root, problem), (times, _)) in &failures {
            let entry = problems.entry(problem.as_str()).or_default();
            entry.0 += times;
            entry.1.push(root.as_str());
        }
        let mut report = format!(
            "the fuzzer (seed {seed}) found {} distinct failures (root field and message) on {}; in short:\n",
            failures.len(),
            app.backend().name()
        );
        for (problem, (times, roots)) in &problems {
            report.push_str(&format!("* {problem}: {times} requests, at {}\n", roots.join(", ")));
        }
        report.push_str("\neach with the shortest request that shows it:\n");
        for ((root, problem), (times, first)) in &failures {
            let op = &operations[*first];
            let mut query = op.query.clone();
            if query.len() > 1500 {
                query = format!("{}… ({} bytes)", &query[..query.floor_char_boundary_compat(1500)], op.query.len());
            }
            let mut variables = op.variables.to_string();
            if variables.len() > 1500 {
                variables = format!(
                    "{}… ({} bytes)",
                    &variables[..variables.floor_char_boundary_compat(1500)],
                    variables.len()
                );
            }
            report.push_str(&format!(
                "- {root}: {problem} ({times}×)\n    as {:?}: {query}  variables: {variables}\n",
                op.who
            ));
        }
        panic!("{report}");
    }
}

trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, index: usize) -> usize;
}

impl FloorCharBoundary for String {
    fn floor_char_boundary_compat(&self, mut index: usize) -> usize {
        index = index.min(self.len());
        while !self.is_char_boundary(index) {
            index -= 1;
        }
        index
    }
}

/// Sends one request; a transport failure (the server closed the connection, or took
/// longer than the client's timeout) is an `Err`, not a panic, so the run goes on.
pub(crate) async fn client_send(
    client: &Client,
    query: &str,
    variables: &Value,
) -> Result<(u16, Result<Value, String>), String> {
    let mut request =
        client.app.http().post(client.app.url("/graphql")).json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = &client.token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| format!("no answer: {e}"))?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| e.to_string())?;
    Ok((
        status,
        serde_json::from_str(&text).map_err(|_| format!("not JSON: {}", text.chars().take(300).collect::<String>())),
    ))
}

fn first_message(body: &Value) -> String {
    body["errors"][0]["message"].as_str().unwrap_or("").to_string()
}

/// A message with its quoted and numeric parts replaced, so that one fault found with
/// many inputs counts once.
pub(crate) fn normalise(message: &str) -> String {
    let mut out = String::new();
    let mut in_quote = false;
    for c in message.chars() {
        if c == '"' {
            if !in_quote {
                out.push_str("\"…");
            }
            in_quote = !in_quote;
            if !in_quote {
                out.push('"');
            }
            continue;
        }
        if in_quote {
            continue;
        }
        if c.is_ascii_digit() {
            if !out.ends_with('#') {
                out.push('#');
            }
            continue;
        }
        out.push(c);
    }
    out.chars().take(300).collect()
}

fn find_user_error_codes(data: &Value) -> Vec<String> {
    let mut codes = Vec::new();
    if let Value::Object(fields) = data {
        for value in fields.values() {
            if let Some(errors) = value.get("userErrors").and_then(Value::as_array) {
                codes.extend(errors.iter().filter_map(|e| e["code"].as_str().map(str::to_string)));
            }
        }
    }
    codes
}
