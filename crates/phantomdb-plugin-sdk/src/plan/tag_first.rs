//! Reading the plan form's tagged objects (`{"node": "filter", ...}`, `{"kind": "column", ...}`)
//! without buffering them.
//!
//! serde's internally tagged enums collect every object into an intermediate tree before they
//! choose the variant, and do so again at each nesting level: most of the time a plugin spent
//! on a plan went there. The form's writer (serde, on both sides) puts the tag first, so here
//! the tag is read first and the rest of the object goes straight to the variant's fields. An
//! object whose tag comes later (JSON written by other means) is collected and read the same
//! way, so both orders give the same result.
//!
//! [`tag_first_enum!`] defines such an enum once: the public, internally tagged enum (for
//! serializing) and a private remote definition of it, externally tagged, whose derived
//! deserializer reads the variant this module hands it.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, VariantAccess, Visitor,
};

/// An enum read by [`deserialize`]: `read` is its externally tagged deserializer.
pub(crate) trait Tagged<'de>: Sized {
    /// The field naming the variant.
    const TAG: &'static str;

    /// Reads the enum from a deserializer presenting it externally tagged.
    fn read<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error>;
}

/// Reads a `T` from an object whose field [`Tagged::TAG`] names the variant.
pub(crate) fn deserialize<'de, D: Deserializer<'de>, T: Tagged<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    deserializer.deserialize_map(TaggedObject(PhantomData))
}

struct TaggedObject<T>(PhantomData<T>);

impl<'de, T: Tagged<'de>> Visitor<'de> for TaggedObject<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an object with a \"{}\" field", T::TAG)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let first = match map.next_key_seed(FirstKey(T::TAG))? {
            None => return Err(de::Error::missing_field(T::TAG)),
            Some(None) => {
                let name = map.next_value_seed(TagValue)?;
                return T::read(Variant { name, map });
            }
            Some(Some(key)) => key,
        };
        // The tag comes later: collect the object, then read it the same way.
        let mut object = serde_json::Map::new();
        object.insert(first, map.next_value()?);
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value()?;
            object.insert(key, value);
        }
        let name = match object.remove(T::TAG) {
            Some(serde_json::Value::String(name)) => name,
            Some(other) => {
                return Err(de::Error::custom(format_args!(
                    "\"{}\" must be a string, not {other}",
                    T::TAG
                )))
            }
            None => return Err(de::Error::missing_field(T::TAG)),
        };
        let rest = de::value::MapDeserializer::<_, serde_json::Error>::new(object.into_iter());
        T::read(Variant {
            name: Cow::Owned(name),
            map: rest,
        })
        .map_err(de::Error::custom)
    }
}

/// Reads an object's first key: `None` when it is the tag (nothing is allocated), else the
/// key.
struct FirstKey(&'static str);

impl<'de> DeserializeSeed<'de> for FirstKey {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for FirstKey {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok((key != self.0).then(|| key.to_owned()))
    }
}

/// Reads the tag's value, borrowed from the input where it can be.
struct TagValue;

impl<'de> DeserializeSeed<'de> for TagValue {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for TagValue {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a variant name")
    }

    fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(name))
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(name.to_owned()))
    }
}

/// An enum value as a deserializer: the variant's name and the object's remaining fields.
struct Variant<'de, A> {
    name: Cow<'de, str>,
    map: A,
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for Variant<'de, A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_enum(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}

impl<'de, A: MapAccess<'de>> EnumAccess<'de> for Variant<'de, A> {
    type Error = A::Error;
    type Variant = Fields<A>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Fields<A>), A::Error> {
        let variant = seed.deserialize(de::value::StrDeserializer::<A::Error>::new(&self.name))?;
        Ok((variant, Fields(self.map)))
    }
}

/// The object's fields after the tag, as the variant's content.
struct Fields<A>(A);

impl<'de, A: MapAccess<'de>> VariantAccess<'de> for Fields<A> {
    type Error = A::Error;

    fn unit_variant(mut self) -> Result<(), A::Error> {
        while self
            .0
            .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
            .is_some()
        {}
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        seed.deserialize(de::value::MapAccessDeserializer::new(self.0))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, A::Error> {
        Err(de::Error::custom(
            "a tagged object cannot hold a tuple variant",
        ))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        visitor.visit_map(self.0)
    }
}

/// Defines a public enum serialized internally tagged (`tag`) and read tag first: the body is
/// written once and also becomes the private remote definition `$remote`, whose derived
/// deserializer reads the variant's fields.
macro_rules! tag_first_enum {
    (
        $(#[$attr:meta])*
        pub enum $name:ident (tag = $tag:literal, remote = $remote:ident, $remote_name:literal) {
            $($body:tt)*
        }
    ) => {
        $(#[$attr])*
        #[derive(Serialize)]
        #[serde(tag = $tag, rename_all = "snake_case")]
        pub enum $name {
            $($body)*
        }

        /// The remote definition [`tag_first`] reads through.
        #[derive(Deserialize)]
        #[serde(remote = $remote_name, rename_all = "snake_case")]
        #[allow(dead_code)]
        enum $remote {
            $($body)*
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                tag_first::deserialize(deserializer)
            }
        }

        impl<'de> tag_first::Tagged<'de> for $name {
            const TAG: &'static str = $tag;

            fn read<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $remote::deserialize(deserializer)
            }
        }
    };
}

pub(crate) use tag_first_enum;

#[cfg(test)]
mod tests {
    use crate::plan::{Expr, Literal, Plan, PlanNode};

    fn sample() -> Plan {
        Plan {
            version: 1,
            root: PlanNode::Filter {
                predicate: Expr::Binary {
                    op: "=".into(),
                    left: Box::new(Expr::column("id")),
                    right: Box::new(Expr::Literal(Literal {
                        data_type: "l".into(),
                        value: serde_json::json!(5),
                    })),
                },
                input: Box::new(PlanNode::Scan {
                    id: Some(0),
                    table: "t".into(),
                    engine: "redb".into(),
                    projection: None,
                    filters: vec![Expr::sql("x > 1")],
                    fetch: Some(3),
                    statistics: None,
                    schema: Vec::new(),
                }),
                schema: Vec::new(),
            },
        }
    }

    #[test]
    fn tag_first_round_trip() {
        let plan = sample();
        let text = serde_json::to_string(&plan).expect("encode");
        assert!(text.contains(r#"{"node":"filter","#), "{text}");
        let back: Plan = serde_json::from_str(&text).expect("decode");
        assert_eq!(back, plan);
    }

    #[test]
    fn tag_anywhere_reads_the_same() {
        let text = r#"{"version": 1, "root": {"input": {"table": "t", "node": "scan",
            "engine": "redb", "id": 0, "filters": [{"sql": "x > 1", "kind": "sql"}], "fetch": 3},
            "predicate": {"op": "=", "kind": "binary", "left": {"name": "id", "kind": "column"},
            "right": {"value": 5, "type": "l", "kind": "literal"}}, "node": "filter"}}"#;
        let plan: Plan = serde_json::from_str(text).expect("decode");
        assert_eq!(plan, sample());
    }

    #[test]
    fn bad_objects_are_refused() {
        for (text, expected) in [
            (r#"{"table": "t"}"#, "missing field `node`"),
            (r#"{"node": "scan"}"#, "missing field `table`"),
            (r#"{"node": "teleport"}"#, "unknown variant `teleport`"),
            (r#"{"table": "t", "node": 7}"#, "\"node\" must be a string"),
            (r#"[1, 2]"#, "an object with a \"node\" field"),
        ] {
            let err = serde_json::from_str::<PlanNode>(text).expect_err(text);
            assert!(err.to_string().contains(expected), "{text}: {err}");
        }
    }
}
