//! What read-state computations need from storage, whether they run inside `apply` (over the
//! pending batch) or in a query (over a snapshot): one piece of code serves both.

use crate::cf::Cf;
use crate::error::Result;
use crate::read::Reader;
use crate::txn::Txn;
use serde::de::DeserializeOwned;

pub(crate) trait Source {
    fn get_raw(&mut self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Number of live keys in `[lower, upper)`.
    fn count_range(&mut self, cf: Cf, lower: &[u8], upper: &[u8]) -> Result<u64>;

    fn get<T: DeserializeOwned>(&mut self, cf: Cf, key: &[u8]) -> Result<Option<T>> {
        match self.get_raw(cf, key)? {
            Some(bytes) => Ok(Some(rmp_serde::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }
}

impl Source for Txn<'_> {
    fn get_raw(&mut self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Txn::get_raw(self, cf, key)
    }
    fn count_range(&mut self, cf: Cf, lower: &[u8], upper: &[u8]) -> Result<u64> {
        Ok(self.scan_range(cf, lower, Some(upper))?.len() as u64)
    }
}

impl Source for &Reader<'_> {
    fn get_raw(&mut self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Reader::get_raw(self, cf, key)
    }
    fn count_range(&mut self, cf: Cf, lower: &[u8], upper: &[u8]) -> Result<u64> {
        let mut count = 0;
        self.scan(cf, lower, Some(upper), false, |_, _| {
            count += 1;
            true
        })?;
        Ok(count)
    }
}
