namespace KestrelTcp.Configuration;

/// <summary>The <c>KestrelTcp</c> configuration is invalid: every problem, each naming its full key.</summary>
public sealed class KestrelTcpConfigurationException : Exception
{
    /// <summary>Creates the exception for <paramref name="problems"/>.</summary>
    public KestrelTcpConfigurationException(IReadOnlyList<string> problems)
        : base($"Invalid KestrelTcp configuration ({problems?.Count ?? 0} problem(s)):{Environment.NewLine}{string.Join(Environment.NewLine, problems ?? [])}")
    {
        Problems = problems ?? [];
    }

    /// <summary>Creates the exception with no problems listed.</summary>
    public KestrelTcpConfigurationException()
        : this([])
    {
    }

    /// <summary>Creates the exception with a message of its own.</summary>
    public KestrelTcpConfigurationException(string message)
        : this([message])
    {
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    public KestrelTcpConfigurationException(string message, Exception innerException)
        : base(message, innerException)
    {
        Problems = [message];
    }

    /// <summary>One line per problem, e.g. <c>KestrelTcp:Listeners:echo:Port: 70000 is not a port (…)</c>.</summary>
    public IReadOnlyList<string> Problems { get; }
}
