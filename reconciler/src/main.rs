fn main() {
    std::process::exit(mcp_gitops::cli::run());
}
