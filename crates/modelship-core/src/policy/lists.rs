//! The Kubernetes CEL list library: `sum()`, `min()`, `max()` and `isSorted()` on lists,
//! using the elements' own `+` and ordering (so ints, uints, doubles and strings work).

use std::cmp::Ordering;

use cel::common::types::{CelBool, CelInt, LIST_TYPE};
use cel::common::value::{CowVal, Val};
use cel::{DeclarationError, Env, ExecutionError};

/// Registers the list functions on `env`.
pub fn register(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_member_overload("sum", "list_sum", LIST_TYPE, vec![], sum)?;
    env.add_member_overload("min", "list_min", LIST_TYPE, vec![], min)?;
    env.add_member_overload("max", "list_max", LIST_TYPE, vec![], max)?;
    env.add_member_overload("isSorted", "list_is_sorted", LIST_TYPE, vec![], is_sorted)?;
    Ok(())
}

/// The elements of the receiver, cloned.
fn elements<'v>(
    function: &str,
    args: &[CowVal<'_, 'v>],
) -> Result<Vec<Box<dyn Val + 'v>>, ExecutionError> {
    let iterable = args
        .first()
        .and_then(|list| list.as_iterable())
        .ok_or_else(|| ExecutionError::function_error(function, "receiver is not a list"))?;
    let mut iter = iterable.iter();
    let mut out = Vec::new();
    while let Some(item) = iter.next() {
        out.push(item.clone_as_boxed());
    }
    Ok(out)
}

fn compare(function: &str, a: &dyn Val, b: &dyn Val) -> Result<Ordering, ExecutionError> {
    a.as_comparer()
        .ok_or_else(|| {
            ExecutionError::function_error(
                function,
                format!("{} values cannot be ordered", a.get_type().name()),
            )
        })?
        .compare(b)
}

/// `[1, 2].sum() == 3`; an empty list sums to 0.
fn sum<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let mut items = elements("sum", &args)?.into_iter();
    let Some(mut total) = items.next() else {
        return Ok(CowVal::owned(CelInt::from(0)));
    };
    for item in items {
        let adder = total.as_adder().ok_or_else(|| {
            ExecutionError::function_error(
                "sum",
                format!("{} values cannot be added", total.get_type().name()),
            )
        })?;
        let next = adder.add(item.as_ref())?.clone_as_boxed();
        total = next;
    }
    Ok(CowVal::Owned(total))
}

fn extreme<'b, 'v>(
    function: &str,
    args: Vec<CowVal<'b, 'v>>,
    keep: Ordering,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let mut items = elements(function, &args)?.into_iter();
    let mut best = items
        .next()
        .ok_or_else(|| ExecutionError::function_error(function, "the list is empty"))?;
    for item in items {
        if compare(function, item.as_ref(), best.as_ref())? == keep {
            best = item;
        }
    }
    Ok(CowVal::Owned(best))
}

/// `[2, 1].min() == 1`; an error on an empty list.
fn min<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    extreme("min", args, Ordering::Less)
}

/// `[2, 1].max() == 2`; an error on an empty list.
fn max<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    extreme("max", args, Ordering::Greater)
}

/// `[1, 2, 2].isSorted()`.
fn is_sorted<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let items = elements("isSorted", &args)?;
    // `windows(2)` yields slices of exactly two elements: the indexing cannot fail.
    for pair in items.windows(2) {
        if compare("isSorted", pair[0].as_ref(), pair[1].as_ref())? == Ordering::Greater {
            return Ok(CowVal::owned(CelBool::from(false)));
        }
    }
    Ok(CowVal::owned(CelBool::from(true)))
}
