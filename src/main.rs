//! The `workbench` command.

use anyhow::Context;
use clap::Parser;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use std::io::IsTerminal;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};
use workbench::config::{
    Cli, Command, InstancesCommand, KeysCommand, LogFormat, PackagesCommand, ProjectsCommand,
    UsersCommand,
};
use workbench::database::{self, Database};
use workbench::Settings;
use workbench_api::secrets::Sealer;
use workbench_api::tenancy;
use workbench_metamodel::{Metamodel, Scope};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let serve_args = match &cli.command {
        Command::Serve(args) => Some(args),
        _ => None,
    };
    let settings = Settings::resolve(&cli.global, serve_args)?;
    let tracer = init_tracing(settings.log_format, settings.otlp_endpoint.as_deref())?;
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(run(cli.command, settings));
    drop(runtime);
    if let Some(provider) = tracer {
        // Flushes spans still waiting in the batch.
        let _ = provider.shutdown();
    }
    result
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve(_) => serve(settings).await,
        Command::Migrate => {
            let db = Database::open(&settings, 2).await?;
            db.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Keys(KeysCommand::Create { project, json }) => {
            let (db, sealer) = open_tenancy(&settings).await?;
            let key = tenancy::create_key(&db.pool, &sealer, project.as_deref()).await;
            db.close().await;
            let key = key?;
            if json {
                println!("{}", serde_json::to_string(&key)?);
            } else {
                println!(
                    "AK:         {}\nSK:         {}\nproject_id: {}",
                    key.ak, key.sk, key.project_id
                );
            }
            Ok(())
        }
        Command::Keys(KeysCommand::RotateEncryption) => {
            let db = Database::open(&settings, 2).await?;
            let sealer = Sealer::new(database::load_master_key(&settings.data_dir)?);
            database::check_master_key(&db.pool, &sealer).await?;
            let rotated = database::rotate_encryption(&db.pool, &settings.data_dir, &sealer).await;
            db.close().await;
            let rotated = rotated?;
            println!(
                "re-encrypted {} access keys and {} connections; the new key is in {}",
                rotated.access_keys,
                rotated.connections,
                settings.data_dir.join("master.key").display()
            );
            if std::env::var_os("WORKBENCH_MASTER_KEY").is_some() {
                eprintln!("WORKBENCH_MASTER_KEY is set: replace it with the new master.key");
            }
            Ok(())
        }
        Command::Users(UsersCommand::Create { name, password, project, actions }) => {
            let (db, _) = open_tenancy(&settings).await?;
            let created =
                tenancy::create_user(&db.pool, &name, &password, project.as_deref(), &actions)
                    .await;
            db.close().await;
            let project = created?;
            println!(
                "user {name} created in domain {} for project {} ({})",
                tenancy::DEFAULT_DOMAIN_NAME,
                project.id,
                project.name
            );
            Ok(())
        }
        Command::Projects(ProjectsCommand::Create { name, json }) => {
            let (db, _) = open_tenancy(&settings).await?;
            let created = tenancy::create_project(&db.pool, &name).await;
            db.close().await;
            let project = created?;
            if json {
                let out = serde_json::json!({"project_id": project.id, "name": project.name});
                println!("{out}");
            } else {
                println!("project {} created: {}", project.name, project.id);
            }
            Ok(())
        }
        Command::Instances(InstancesCommand::Create { project, instance, packages }) => {
            let db = Database::open(&settings, 2).await?;
            let created = create_instance(&db.pool, project.as_deref(), &instance, packages).await;
            db.close().await;
            let (project_id, packages) = created?;
            println!(
                "instance {instance} created in project {project_id} with {}",
                packages.join(", ")
            );
            Ok(())
        }
        Command::Packages(PackagesCommand::Load { file }) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let db = Database::open(&settings, 2).await?;
            let loaded = Metamodel::new(db.pool.clone()).register_package(&text).await;
            db.close().await;
            let package = loaded.with_context(|| format!("loading {}", file.display()))?;
            println!(
                "package {} loaded: {} entity types, {} signature types, {} relationships",
                package.package_id,
                package.entity_types.len(),
                package.signature_types.len(),
                package.relationships.len()
            );
            Ok(())
        }
    }
}

/// The database and the sealer of its secrets, for commands that make keys, users or projects:
/// the master key must match, and a first-start bootstrap is done if no server ran yet.
async fn open_tenancy(settings: &Settings) -> anyhow::Result<(Database, Sealer)> {
    let db = Database::open(settings, 2).await?;
    let sealer = Sealer::new(database::load_master_key(&settings.data_dir)?);
    database::check_master_key(&db.pool, &sealer).await?;
    tenancy::bootstrap(&db.pool, &sealer).await?;
    Ok((db, sealer))
}

/// Creates an ABM instance in `project` (the default project when `None`); returns the project
/// id and the packages the instance holds.
async fn create_instance(
    pool: &sqlx::PgPool,
    project: Option<&str>,
    instance: &str,
    mut packages: Vec<String>,
) -> anyhow::Result<(String, Vec<String>)> {
    let project = tenancy::find_project(pool, project).await?;
    if packages.is_empty() {
        packages.push(workbench_metamodel::package::METAMODEL3.to_owned());
    }
    let scope = Scope::new(&project.id, instance);
    Metamodel::new(pool.clone()).create_instance(&scope, &packages).await?;
    Ok((project.id, packages))
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let running = workbench::server::start(settings).await?;
    let stop = running.stopper();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: draining requests");
        let _ = stop.send(true);
    });
    running.wait().await.context("server")?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}

/// Logs to stderr as text or JSON; with an OTLP endpoint, spans are exported there as well.
fn init_tracing(
    format: LogFormat,
    otlp_endpoint: Option<&str>,
) -> anyhow::Result<Option<SdkTracerProvider>> {
    let filter = EnvFilter::try_from_env("WORKBENCH_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let (json, text) = match format {
        LogFormat::Json => (Some(fmt::layer().json().with_writer(std::io::stderr)), None),
        // Colour codes only when a person reads stderr; redirected logs stay plain text.
        LogFormat::Text => {
            let ansi = std::io::stderr().is_terminal();
            (None, Some(fmt::layer().with_ansi(ansi).with_writer(std::io::stderr)))
        }
    };
    let provider = match otlp_endpoint {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
                .build()
                .context("building the OTLP exporter")?;
            let resource = Resource::builder().with_service_name("workbench").build();
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource)
                    .build(),
            )
        }
        None => None,
    };
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("workbench")));
    tracing_subscriber::registry().with(filter).with(json).with(text).with(otel).init();
    Ok(provider)
}
