//! Instances and packages: resolving a scope to its catalog, creating instances, and
//! registering custom packages.

use std::sync::Arc;

use crate::error::{MetamodelError, Result};
use crate::package::{metamodel3, parse_package, Catalog, Package, METAMODEL3};
use crate::{store, Metamodel, Scope, DEFAULT_INSTANCE};

impl Metamodel {
    /// The merged package definitions of the scope's instance. The `default` instance is
    /// created with `Metamodel3` the first time it is used.
    pub async fn catalog(&self, scope: &Scope) -> Result<Catalog> {
        let packages = self.instance_packages(scope).await?;
        Ok(Catalog::new(&packages))
    }

    /// The package definitions of the scope's instance, in the instance's order. The `default`
    /// instance is created with `Metamodel3` the first time it is used.
    pub async fn instance_packages(&self, scope: &Scope) -> Result<Vec<Arc<Package>>> {
        check_instance_id(&scope.instance_id)?;
        let ids = match store::instance_packages(&self.pool, scope).await? {
            Some(ids) => ids,
            None if scope.instance_id == DEFAULT_INSTANCE => {
                let ids = vec![METAMODEL3.to_owned()];
                self.insert_instance(scope, &ids).await?;
                ids
            }
            None => return Err(MetamodelError::InstanceNotFound(scope.instance_id.clone())),
        };
        self.load_packages(&ids).await
    }

    /// Creates an instance holding `package_ids` (built-in or registered packages).
    pub async fn create_instance(&self, scope: &Scope, package_ids: &[String]) -> Result<()> {
        check_instance_id(&scope.instance_id)?;
        if package_ids.is_empty() {
            return Err(MetamodelError::InvalidRequest("an instance needs a package".into()));
        }
        if let Some(bad) = package_ids.iter().find(|id| id.is_empty() || id.contains('\0')) {
            return Err(MetamodelError::InvalidRequest(format!("unknown package {bad:?}")));
        }
        let packages = self.load_packages(package_ids).await?;
        if let Some(missing) =
            package_ids.iter().find(|id| !packages.iter().any(|p| &p.package_id == *id))
        {
            return Err(MetamodelError::InvalidRequest(format!("unknown package {missing}")));
        }
        if !self.insert_instance(scope, package_ids).await? {
            let msg = format!("instance {} already exists", scope.instance_id);
            return Err(MetamodelError::InvalidRequest(msg));
        }
        Ok(())
    }

    /// Parses a package file (JSON or YAML) and stores it, replacing an earlier version.
    pub async fn register_package(&self, text: &str) -> Result<Package> {
        if text.contains('\0') {
            let msg = "a package definition cannot contain NUL characters".into();
            return Err(MetamodelError::InvalidRequest(msg));
        }
        let package = parse_package(text)?;
        if package.package_id == METAMODEL3 {
            let msg = format!("{METAMODEL3} is built in and cannot be replaced");
            return Err(MetamodelError::InvalidRequest(msg));
        }
        let definition = serde_json::to_value(&package)
            .map_err(|e| MetamodelError::InvalidRequest(format!("package: {e}")))?;
        store::upsert_package(&self.pool, &package.package_id, &definition).await?;
        Ok(package)
    }

    async fn insert_instance(&self, scope: &Scope, package_ids: &[String]) -> Result<bool> {
        match store::insert_instance(&self.pool, scope, package_ids).await {
            Ok(created) => Ok(created),
            Err(sqlx::Error::Database(e))
                if e.constraint() == Some("abm_instances_project_fkey") =>
            {
                let msg = format!("project {} does not exist", scope.project_id);
                Err(MetamodelError::InvalidRequest(msg))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The built-in and registered packages among `ids`, in the order of `ids`. A registered
    /// package whose stored definition no longer parses is skipped with a warning.
    async fn load_packages(&self, ids: &[String]) -> Result<Vec<Arc<Package>>> {
        let custom_ids: Vec<String> = ids.iter().filter(|id| *id != METAMODEL3).cloned().collect();
        let stored = if custom_ids.is_empty() {
            Vec::new()
        } else {
            store::custom_packages(&self.pool, &custom_ids).await?
        };
        let mut packages = Vec::with_capacity(ids.len());
        for id in ids {
            if id == METAMODEL3 {
                packages.push(metamodel3());
                continue;
            }
            let Some((_, definition)) = stored.iter().find(|(pid, _)| pid == id) else {
                continue;
            };
            match serde_json::from_value::<Package>(definition.clone()) {
                Ok(package) => packages.push(Arc::new(package)),
                Err(error) => tracing::warn!(package_id = %id, %error, "stored package unreadable"),
            }
        }
        Ok(packages)
    }
}

fn check_instance_id(instance_id: &str) -> Result<()> {
    let len = instance_id.chars().count();
    if len == 0 || len > 64 || instance_id.contains('\0') {
        let msg = "instance_id must be 1-64 characters other than NUL".into();
        return Err(MetamodelError::InvalidRequest(msg));
    }
    Ok(())
}
