//! Kubernetes resource quantities in CEL: `quantity("8Gi")`, `isQuantity(s)`, and the
//! member functions of the Kubernetes quantity library (`isLessThan`, `isGreaterThan`,
//! `compareTo`, `asInteger`, `isInteger`, `asApproximateFloat`, `sign`, `add`, `sub`), over
//! the one exact [`Quantity`] of [`crate::quantity`].

use std::any::Any;
use std::cmp::Ordering;

use cel::common::types::{CelBool, CelDouble, CelInt, CelString, INT_TYPE, STRING_TYPE, Type};
use cel::common::value::{CowVal, StaticVal, Val};
use cel::{DeclarationError, Env, ExecutionError};

pub use crate::quantity::{Quantity, QuantityError};

/// The CEL type of quantities, named as in Kubernetes.
pub static QUANTITY_TYPE: Type = Type::new_unspecified_type("kubernetes.Quantity");

impl Val for Quantity {
    fn get_type(&self) -> &Type {
        &QUANTITY_TYPE
    }

    fn cel_type() -> &'static Type {
        &QUANTITY_TYPE
    }

    fn equals(&self, other: &dyn Val) -> bool {
        other.downcast_ref::<Quantity>() == Some(self)
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v> {
        Box::new(*self)
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

impl StaticVal for Quantity {}

/// Registers `quantity`, `isQuantity` and the quantity member functions on `env`.
pub fn register(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_type(QUANTITY_TYPE.to_owned())?;
    env.add_overload("quantity", "quantity_string", vec![STRING_TYPE], quantity)?;
    env.add_overload(
        "isQuantity",
        "is_quantity_string",
        vec![STRING_TYPE],
        is_quantity,
    )?;
    let q = || QUANTITY_TYPE.to_owned();
    env.add_member_overload("isLessThan", "quantity_less", q(), vec![q()], is_less_than)?;
    env.add_member_overload(
        "isGreaterThan",
        "quantity_greater",
        q(),
        vec![q()],
        is_greater_than,
    )?;
    env.add_member_overload("compareTo", "quantity_compare", q(), vec![q()], compare_to)?;
    env.add_member_overload("asInteger", "quantity_as_int", q(), vec![], as_integer)?;
    env.add_member_overload("isInteger", "quantity_is_int", q(), vec![], is_integer)?;
    env.add_member_overload(
        "asApproximateFloat",
        "quantity_as_float",
        q(),
        vec![],
        as_approximate_float,
    )?;
    env.add_member_overload("sign", "quantity_sign", q(), vec![], sign)?;
    env.add_member_overload("add", "quantity_add", q(), vec![q()], add)?;
    env.add_member_overload("add", "quantity_add_int", q(), vec![INT_TYPE], add)?;
    env.add_member_overload("sub", "quantity_sub", q(), vec![q()], sub)?;
    env.add_member_overload("sub", "quantity_sub_int", q(), vec![INT_TYPE], sub)?;
    Ok(())
}

/// The `n`th argument as a string, or a typed error naming `function`.
fn string_arg<'a>(
    function: &str,
    args: &'a [CowVal<'_, '_>],
    n: usize,
) -> Result<&'a str, ExecutionError> {
    args.get(n)
        .and_then(|v| v.downcast_ref::<CelString>())
        .map(|s| s.inner())
        .ok_or_else(|| {
            ExecutionError::function_error(function, format!("argument {n} is not a string"))
        })
}

/// The `n`th argument as a quantity; an `int` is accepted where Kubernetes accepts one.
fn quantity_arg(
    function: &str,
    args: &[CowVal<'_, '_>],
    n: usize,
) -> Result<Quantity, ExecutionError> {
    if let Some(int) = args.get(n).and_then(|v| v.downcast_ref::<CelInt>()) {
        return Ok(Quantity::from_int(*int.inner()));
    }
    args.get(n)
        .and_then(|v| v.downcast_ref::<Quantity>())
        .copied()
        .ok_or_else(|| {
            ExecutionError::function_error(function, format!("argument {n} is not a quantity"))
        })
}

fn quantity<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let text = string_arg("quantity", &args, 0)?;
    Quantity::parse(text)
        .map(CowVal::owned)
        .map_err(|e| ExecutionError::function_error("quantity", e))
}

fn is_quantity<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let text = string_arg("isQuantity", &args, 0)?;
    Ok(CowVal::owned(CelBool::from(Quantity::parse(text).is_ok())))
}

fn compare(function: &str, args: &[CowVal<'_, '_>]) -> Result<Ordering, ExecutionError> {
    Ok(quantity_arg(function, args, 0)?.cmp(&quantity_arg(function, args, 1)?))
}

fn is_less_than<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let ordering = compare("isLessThan", &args)?;
    Ok(CowVal::owned(CelBool::from(ordering == Ordering::Less)))
}

fn is_greater_than<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let ordering = compare("isGreaterThan", &args)?;
    Ok(CowVal::owned(CelBool::from(ordering == Ordering::Greater)))
}

fn compare_to<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let ordering = compare("compareTo", &args)?;
    Ok(CowVal::owned(CelInt::from(ordering as i64)))
}

fn as_integer<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let q = quantity_arg("asInteger", &args, 0)?;
    let int = q.as_integer().ok_or_else(|| {
        ExecutionError::function_error(
            "asInteger",
            format!("quantity {q} is not an integer or does not fit an int"),
        )
    })?;
    Ok(CowVal::owned(CelInt::from(int)))
}

fn is_integer<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let q = quantity_arg("isInteger", &args, 0)?;
    Ok(CowVal::owned(CelBool::from(q.is_integer())))
}

fn as_approximate_float<'b, 'v>(
    args: Vec<CowVal<'b, 'v>>,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let q = quantity_arg("asApproximateFloat", &args, 0)?;
    Ok(CowVal::owned(CelDouble::from(q.as_approximate_float())))
}

fn sign<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let q = quantity_arg("sign", &args, 0)?;
    Ok(CowVal::owned(CelInt::from(q.signum())))
}

fn add<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (a, b) = (
        quantity_arg("add", &args, 0)?,
        quantity_arg("add", &args, 1)?,
    );
    a.checked_add(b)
        .map(CowVal::owned)
        .ok_or_else(|| ExecutionError::function_error("add", "quantity overflow"))
}

fn sub<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (a, b) = (
        quantity_arg("sub", &args, 0)?,
        quantity_arg("sub", &args, 1)?,
    );
    a.checked_sub(b)
        .map(CowVal::owned)
        .ok_or_else(|| ExecutionError::function_error("sub", "quantity overflow"))
}
