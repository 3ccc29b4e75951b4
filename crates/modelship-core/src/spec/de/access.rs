//! The serde access types over lists, mappings and enum variants of a node tree. Each
//! leaves out values whose paths are poisoned and reads every value through a guard, so a
//! failure is recorded at the value's own path.

use std::rc::Rc;

use serde::de::{
    self, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess, VariantAccess,
    Visitor,
};

use super::{De, Error};
use crate::spec::node::{Entry, Node};

/// The items of a list, leaving out poisoned ones.
pub(super) struct Items<'a> {
    de: De<'a>,
    items: std::iter::Enumerate<std::slice::Iter<'a, Rc<Node>>>,
}

impl<'a> Items<'a> {
    pub(super) fn new(de: De<'a>, items: &'a [Rc<Node>]) -> Self {
        Items {
            de,
            items: items.iter().enumerate(),
        }
    }
}

impl<'a> SeqAccess<'a> for Items<'a> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        for (index, item) in self.items.by_ref() {
            let path = self.de.path.index(index);
            if !self.de.ctx.is_poisoned(&path) {
                return self.de.child(item, path).read(seed).map(Some);
            }
        }
        Ok(None)
    }
}

/// The entries of a mapping.
pub(super) struct Entries<'a> {
    de: De<'a>,
    entries: std::vec::IntoIter<&'a Entry>,
    value: Option<&'a Entry>,
}

impl<'a> Entries<'a> {
    pub(super) fn new(de: De<'a>, entries: Vec<&'a Entry>) -> Self {
        Entries {
            de,
            entries: entries.into_iter(),
            value: None,
        }
    }
}

impl<'a> MapAccess<'a> for Entries<'a> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        // Poisoned entries stay: their values read as placeholders (see `blank`), so a
        // required field that failed does not fail its parent too.
        if let Some(entry) = self.entries.next() {
            self.value = Some(entry);
            return seed
                .deserialize(entry.key.as_str().into_deserializer())
                .map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<T: DeserializeSeed<'a>>(&mut self, seed: T) -> Result<T::Value, Error> {
        let entry = self
            .value
            .take()
            .ok_or_else(|| Error::Message("a value was read before its key".to_string()))?;
        let path = self.de.path.key(entry.key.clone());
        self.de.child(&entry.value, path).read(seed)
    }
}

/// One variant of an enum: a plain name, or the single key of a mapping and its value.
pub(super) struct Variant<'a> {
    pub(super) name: &'a str,
    pub(super) value: Option<&'a Entry>,
    pub(super) de: De<'a>,
}

impl<'a> EnumAccess<'a> for Variant<'a> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'a>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        let name = seed.deserialize(self.name.into_deserializer())?;
        Ok((name, self))
    }
}

impl<'a> Variant<'a> {
    fn value(self) -> Result<De<'a>, Error> {
        match self.value {
            Some(entry) => {
                let path = self.de.path.key(entry.key.clone());
                Ok(self.de.child(&entry.value, path))
            }
            None => Err(Error::Message(format!(
                "`{}` needs a value, written `{}: <value>`",
                self.name, self.name
            ))),
        }
    }
}

impl<'a> VariantAccess<'a> for Variant<'a> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.value {
            Some(entry) if !entry.value.is_null() => {
                Err(Error::Message(format!("`{}` takes no value", self.name)))
            }
            _ => Ok(()),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'a>>(self, seed: T) -> Result<T::Value, Error> {
        self.value()?.read(seed)
    }

    fn tuple_variant<V: Visitor<'a>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_seq(self.value()?, visitor)
    }

    fn struct_variant<V: Visitor<'a>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_struct(self.value()?, "", fields, visitor)
    }
}
